//! `asyncapy bench` end to end: the built binary against small servers started
//! here on 127.0.0.1:0 (a correct echo, a corrupting echo, a server that only
//! answers failures), checking the `--json` report and the exit status.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use asyncaproto::{Encoding, ErrorCode, FrameCodec};
use serde_json::Value;

/// Starts a server on 127.0.0.1:0 that runs `serve` on every connection, each
/// on its own thread; the threads end with their connections.
fn spawn_server(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Echoes bytes back as they come: a correct AsyncAProto echo server.
fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Calls `on_frame` with every complete frame (head included) read from
/// `stream`, until the peer closes or `on_frame` returns false.
fn for_each_frame(mut stream: TcpStream, mut on_frame: impl FnMut(&mut TcpStream, &[u8]) -> bool) {
    let codec = FrameCodec::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        while let Ok(Some((_, total))) = codec.check_head(&buf) {
            if buf.len() < total {
                break;
            }
            let frame: Vec<u8> = buf.drain(..total).collect();
            if !on_frame(&mut stream, &frame) {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answers every frame with a well-formed frame whose payload differs by one
/// character from the request's.
fn corrupting_echo(stream: TcpStream) {
    for_each_frame(stream, |stream, frame| {
        let mut reply = frame.to_vec();
        if let Some(i) = reply.iter().rposition(|&b| b == b'x') {
            reply[i] = b'y';
        }
        stream.write_all(&reply).is_ok()
    });
}

/// Answers the first frame with `ERR_NO_HANDLER`, then closes.
fn failing_server(stream: TcpStream) {
    for_each_frame(stream, |stream, _frame| {
        let mut payload = Vec::new();
        ErrorCode::NoHandler.write_payload(Encoding::Json, &mut payload);
        let mut reply = bytes::BytesMut::new();
        FrameCodec::default()
            .write_raw(Encoding::Json, &payload, &mut reply)
            .expect("a failure payload fits the frame");
        let _ = stream.write_all(&reply);
        false
    });
}

/// Runs `asyncapy bench --json --no-progress` against `addr` with `args`.
fn bench(addr: SocketAddr, args: &[&str]) -> (Output, Value) {
    let port = addr.port().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_asyncapy"));
    command
        .args(["bench", "--host", "127.0.0.1", "--port", &port])
        .args(["--json", "--no-progress", "--connect-timeout", "5s"]);
    if !args.contains(&"--timeout") {
        command.args(["--timeout", "5s"]);
    }
    let output = command.args(args).output().expect("run asyncapy bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn assert_clean(output: &Output, report: &Value, requests: u64) {
    assert!(
        output.status.success(),
        "exit status {:?}, report {report}",
        output.status
    );
    assert_eq!(report["requests"], requests, "{report}");
    assert_eq!(report["errors"]["total"], 0, "{report}");
}

#[test]
fn counts_every_request_against_a_correct_echo() {
    let addr = spawn_server(echo);
    let (output, report) = bench(addr, &["-n", "200"]);
    assert_clean(&output, &report, 200);
    assert_eq!(report["settings"]["encoding"], "json");
    assert_eq!(report["settings"]["payload_size"], 64);
    // Every request and reply is a 70-byte frame.
    assert_eq!(report["bytes_sent"], 200 * 70);
    assert_eq!(report["bytes_received"], 200 * 70);
    assert!(report["latency_us"]["max"]
        .as_u64()
        .is_some_and(|max| max > 0));
}

#[test]
fn pipelines_ziproto_with_other_framing() {
    let addr = spawn_server(echo);
    let (output, report) = bench(
        addr,
        &[
            "-n",
            "200",
            "-c",
            "3",
            "-p",
            "8",
            "-e",
            "ziproto",
            "--payload-size",
            "1000",
            "--header-size",
            "2",
            "--byteorder",
            "little",
        ],
    );
    assert_clean(&output, &report, 200);
    assert_eq!(report["bytes_sent"], 200 * 1004);
}

#[test]
fn opens_a_connection_per_request() {
    let addr = spawn_server(echo);
    let (output, report) = bench(addr, &["-n", "50", "-c", "4", "--mode", "per-request"]);
    assert_clean(&output, &report, 50);
}

#[test]
fn runs_for_a_duration() {
    let addr = spawn_server(echo);
    let (output, report) = bench(addr, &["-d", "200ms", "--warmup", "50ms", "-c", "2"]);
    assert!(output.status.success(), "{report}");
    assert!(
        report["requests"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    let secs = report["duration_secs"].as_f64().unwrap_or_default();
    assert!((0.15..0.5).contains(&secs), "{report}");
}

#[test]
fn counts_mismatched_replies_and_fails() {
    let addr = spawn_server(corrupting_echo);
    let (output, report) = bench(addr, &["-n", "200", "-c", "4", "-p", "4"]);
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["requests"], 0, "{report}");
    assert_eq!(report["errors"]["mismatch"], 200, "{report}");
    assert_eq!(report["errors"]["total"], 200, "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("200 errors"), "{stderr}");
}

#[test]
fn counts_failure_replies_by_code_and_fails() {
    let addr = spawn_server(failing_server);
    let (output, report) = bench(addr, &["-n", "200", "-c", "4"]);
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["requests"], 0, "{report}");
    assert_eq!(
        report["errors"]["failure_replies"]["ERR_NO_HANDLER"], 200,
        "{report}"
    );
    assert_eq!(report["errors"]["total"], 200, "{report}");
}

#[test]
fn counts_refused_connections_and_fails() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local address")
    };
    let (output, report) = bench(addr, &["-n", "5", "-c", "1"]);
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["errors"]["connect_refused"], 5, "{report}");
}

/// A failure frame with `code`.
fn failure_frame(code: ErrorCode) -> Vec<u8> {
    let mut payload = Vec::new();
    code.write_payload(Encoding::Json, &mut payload);
    let mut reply = bytes::BytesMut::new();
    FrameCodec::default()
        .write_raw(Encoding::Json, &payload, &mut reply)
        .expect("a failure payload fits the frame");
    reply.to_vec()
}

/// A server going through a restart, one connection at a time: the first
/// echoes 3 frames and answers the 4th `ERR_SHUTTING_DOWN`, then closes;
/// the second closes after one frame without answering; later ones echo.
/// `connections` counts them (one counter per test).
fn restarting(stream: TcpStream, connections: &AtomicUsize) {
    let nth = connections.fetch_add(1, Ordering::SeqCst);
    let mut seen = 0;
    for_each_frame(stream, |stream, frame| {
        seen += 1;
        match (nth, seen) {
            (0, 4) => {
                let _ = stream.write_all(&failure_frame(ErrorCode::ShuttingDown));
                false
            }
            (1, _) => false,
            _ => stream.write_all(frame).is_ok(),
        }
    });
}

#[test]
fn resends_what_a_restarting_server_lost() {
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let addr = spawn_server(|stream| restarting(stream, &CONNECTIONS));
    let (output, report) = bench(addr, &["-n", "20", "-c", "1", "--resend"]);
    // Every request answered by its echo, none counted as an error.
    assert_clean(&output, &report, 20);
    // The 4th request (refused) and the 5th (dropped with the connection).
    assert_eq!(report["resent"]["requests"], 2, "{report}");
    assert_eq!(report["settings"]["resend"], true, "{report}");
}

#[test]
fn resends_in_per_request_mode_too() {
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let addr = spawn_server(|stream| restarting(stream, &CONNECTIONS));
    // One request per connection: the first gets an echo, the second a
    // close; the rest echo (the first connection's 4th frame never comes).
    let args = ["-n", "10", "-c", "1", "--mode", "per-request", "--resend"];
    let (output, report) = bench(addr, &args);
    assert_clean(&output, &report, 10);
    assert_eq!(report["resent"]["requests"], 1, "{report}");
}

#[test]
fn without_resend_a_restart_counts_as_errors() {
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let addr = spawn_server(|stream| restarting(stream, &CONNECTIONS));
    let (output, report) = bench(addr, &["-n", "20", "-c", "1"]);
    assert!(!output.status.success(), "{report}");
    assert_eq!(
        report["errors"]["failure_replies"]["ERR_SHUTTING_DOWN"], 1,
        "{report}"
    );
    assert_eq!(report["resent"]["requests"], 0, "{report}");
}

/// Reads everything and never answers.
fn silent_server(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Closes the connection as soon as a whole frame has arrived.
fn closing_server(stream: TcpStream) {
    for_each_frame(stream, |_, _| false);
}

#[test]
fn counts_timeouts_and_fails() {
    let addr = spawn_server(silent_server);
    let (output, report) = bench(addr, &["-n", "3", "-c", "1", "--timeout", "100ms"]);
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["errors"]["timeout"], 3, "{report}");
    assert_eq!(report["errors"]["total"], 3, "{report}");
}

#[test]
fn counts_closed_connections_and_fails() {
    let addr = spawn_server(closing_server);
    let (output, report) = bench(addr, &["-n", "20", "-c", "2"]);
    assert!(!output.status.success(), "{report}");
    let lost = report["errors"]["closed"].as_u64().unwrap_or_default()
        + report["errors"]["reset"].as_u64().unwrap_or_default();
    assert_eq!(lost, 20, "{report}");
}

#[test]
fn paces_requests_at_the_asked_rate() {
    let addr = spawn_server(echo);
    let (output, report) = bench(
        addr,
        &[
            "-c", "4", "-p", "4", "--rate", "500", "-d", "2s", "--warmup", "0s",
        ],
    );
    assert!(output.status.success(), "{report}");
    assert_eq!(report["settings"]["rate"], 500.0, "{report}");
    // 2 s at 500 req/s: 1,000 requests (a correct echo answers far faster).
    let requests = report["requests"].as_u64().unwrap_or_default();
    assert!((700..=1_010).contains(&requests), "{report}");
}

/// An echo that takes 20 ms over each request: at most 50 a second.
fn slow_echo(stream: TcpStream) {
    for_each_frame(stream, |stream, frame| {
        thread::sleep(std::time::Duration::from_millis(20));
        stream.write_all(frame).is_ok()
    });
}

/// Asked for twice what the server can do, the paced run shows the backlog
/// in its latency (counted from each request's scheduled time), where the
/// unpaced run only sees the server's 20 ms.
#[test]
fn a_server_that_falls_behind_shows_in_paced_latency() {
    let addr = spawn_server(slow_echo);
    let unpaced = ["-c", "1", "-d", "1500ms", "--warmup", "0s"];
    let (output, report) = bench(addr, &unpaced);
    assert!(output.status.success(), "{report}");
    let p99 = report["latency_us"]["p99"].as_u64().unwrap_or(u64::MAX);
    assert!(p99 < 200_000, "{report}");

    let paced = ["-c", "1", "--rate", "100", "-d", "1500ms", "--warmup", "0s"];
    let (output, report) = bench(addr, &paced);
    assert!(output.status.success(), "{report}");
    let p90 = report["latency_us"]["p90"].as_u64().unwrap_or_default();
    assert!(p90 > 300_000, "{report}");
    let requests = report["requests"].as_u64().unwrap_or(u64::MAX);
    assert!(requests <= 80, "at most ~50 a second: {report}");
}

#[test]
fn bad_rates_are_refused_with_a_message() {
    for (args, message) in [
        (&["--rate", "0"][..], "is not a rate"),
        (&["--rate=-3"][..], "is not a rate"),
        (&["--rate", "fast"][..], "is not a rate"),
        (
            &["--rate", "5", "--mode", "per-request"][..],
            "does not go with --mode per-request",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_asyncapy"))
            .args(["bench", "--port", "9", "-n", "1"])
            .args(args)
            .output()
            .expect("run asyncapy bench");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A port nothing listens on (it was bound a moment ago, then closed).
fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address")
}

/// A timed run that cannot connect at all stops at once with one line
/// naming the address and the cause, prints no report, and exits 1, in both
/// modes (it went on for its whole duration, then printed latencies of 0).
#[test]
fn a_timed_run_against_a_dead_port_stops_at_once_with_a_message() {
    let addr = dead_port();
    let cause = TcpStream::connect(addr)
        .expect_err("nothing listens")
        .to_string();
    for mode in ["persistent", "per-request"] {
        let started = Instant::now();
        // 60 s asked for; run_bounded fails the test past 10 s.
        let output = support::run_bounded(
            support::asyncapy()
                .args(["bench", "--port", &addr.port().to_string()])
                .args(["-d", "60s", "-c", "4", "--no-progress", "--mode", mode]),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{mode}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "asyncapy: error: cannot connect to {addr}: {cause}; the run stopped with \
                 nothing measured\n"
            ),
            "{mode}"
        );
        assert!(output.stdout.is_empty(), "{mode}: no report");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode}: stopped after {:?}",
            started.elapsed()
        );
    }

    // A counted run is bounded by its count: it reports, without latencies.
    let output = support::run_bounded(
        support::asyncapy()
            .args(["bench", "--port", &addr.port().to_string()])
            .args(["-n", "2", "-c", "1", "--no-progress"]),
    );
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("\n  latency     none (no request was answered)\n"),
        "{report}"
    );
    assert!(
        report.contains("\n  errors      2 in all: connect_refused 2\n"),
        "{report}"
    );
}

/// The lines of a progress display (carriage returns and line feeds apart,
/// escape sequences dropped).
fn frames(terminal: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = terminal.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .split(['\r', '\n'])
        .map(|line| line.trim_end().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// One progress line of a timed run: its clock in seconds and whether it
/// says "warming up"; `None` for other lines (the report).
fn progress_line(line: &str) -> Option<(f64, bool)> {
    let (clock, rest) = line.trim_start().split_once("s [")?;
    let clock: f64 = clock.parse().ok()?;
    let (bar, message) = rest.split_at_checked(30)?;
    assert!(bar.chars().all(|c| "=> ".contains(c)), "{line:?}");
    let message = message.strip_prefix(']')?.trim();
    if message.is_empty() {
        return Some((clock, false)); // drawn before the first update
    }
    let (warming, message) = match message.strip_prefix("warming up, ") {
        Some(rest) => (true, rest),
        None => (false, message),
    };
    let (rate, errors) = message.split_once(" req/s, ")?;
    assert!(rate.parse::<u64>().is_ok(), "{line:?}");
    assert_eq!(errors, "0 errors", "{line:?}");
    Some((clock, warming))
}

/// The progress clock shows the measured time: 0 during the warm-up, at most
/// the asked duration (it counted the warm-up: `-d 5s` reached 6 s).
#[test]
fn the_progress_clock_counts_the_measured_time_only() {
    let addr = spawn_server(echo);
    // A terminal for stderr (the display is off otherwise): Python's pty.
    let script = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)";
    let output = support::run_bounded(
        Command::new("python3")
            .env("TERM", "xterm")
            .args(["-c", script, env!("CARGO_BIN_EXE_asyncapy")])
            .args(["bench", "--port", &addr.port().to_string()])
            .args(["-c", "1", "-d", "2s", "--warmup", "1s"]),
    );
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    let lines: Vec<(f64, bool)> = frames(&terminal)
        .iter()
        .filter_map(|line| progress_line(line))
        .collect();
    assert!(lines.len() >= 4, "{terminal}");
    for &(clock, warming) in &lines {
        assert!(clock <= 2.0, "the clock passed -d 2s: {terminal}");
        if warming {
            assert_eq!(clock, 0.0, "the warm-up is not measured: {terminal}");
        }
    }
    assert!(lines.iter().any(|&(_, warming)| warming), "{terminal}");
    let last = lines.iter().map(|&(clock, _)| clock).fold(0.0, f64::max);
    assert!(last >= 1.0, "the clock ran: {terminal}");
    // The report follows the display.
    assert!(
        terminal.contains("duration    2.000 s (after 1 s of warm-up)"),
        "{terminal}"
    );
}
