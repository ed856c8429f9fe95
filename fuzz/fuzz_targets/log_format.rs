//! Log formats (`console_format`, `datefmt`) from arbitrary strings
//! (the input is `format`, a 0xff byte, `datefmt`): parsed by
//! `PythonFormat::new`, and when accepted, used to render an event inside a
//! session span, as the server's log lines are.
//!
//! Checks: parsing never panics; an accepted format renders without panicking,
//! in bounded time and memory.

#![no_main]

use asyncapy::logging::PythonFormat;
use asyncapy_fuzz::timed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    // `format 0xff datefmt`: 0xff is never part of UTF-8, so any two strings
    // fit, and seeds stay readable.
    let (format, datefmt) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"%d/%m/%Y %H:%M:%S %p"[..]),
    };
    let (Ok(format_text), Ok(datefmt)) =
        (std::str::from_utf8(format), std::str::from_utf8(datefmt))
    else {
        return;
    };
    let Ok(format) = PythonFormat::new(format_text, datefmt) else {
        return;
    };
    let subscriber = tracing_subscriber::fmt()
        .event_format(format)
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("session", id = "7fd5fab0-5393-44ec-a75d-fa4f2c7e4562");
        let _entered = span.enter();
        tracing::info!(peer = "127.0.0.1:5000", "New session started");
        tracing::warn!("Refusing packet: {format_text}");
    });
}
