//! A server started with `bind()` (not only `start()`) logs in the original's
//! format, and a handler's panic is reported once, in that log, with its
//! session id; not also by Rust's panic hook. Checked on the standard error of
//! a real process: this test binary runs itself again as the server.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::process::Command;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::{map, RawClient};

/// Set in the child process: run the server instead of checking its log.
const CHILD: &str = "ASYNCAPY_LOG_SETUP_CHILD";

#[test]
fn bind_logs_like_start_and_a_handler_panic_is_reported_once() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bind_logs_like_start_and_a_handler_panic_is_reported_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the child failed:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    // The original's format, `[%(levelname)s] %(asctime)s %(message)s`, with
    // the session id before the message of a session's lines.
    let started = lines
        .iter()
        .find(|l| l.contains("New session started"))
        .unwrap_or_else(|| panic!("no session start line in:\n{stderr}"));
    assert!(started.starts_with("[INFO] "), "{started}");
    let id = started.rsplit("UUID is ").next().unwrap().trim();
    let panics: Vec<&&str> = lines.iter().filter(|l| l.contains("panicked")).collect();
    assert_eq!(panics.len(), 1, "one report of the panic:\n{stderr}");
    let report = panics[0];
    assert!(report.starts_with("[ERROR] "), "{report}");
    assert!(report.contains(&format!("({id}) ")), "{report}");
    assert!(
        report.contains("Handler panicked at crates/asyncapy/tests/log_setup.rs:")
            && report.ends_with(": deliberate"),
        "{report}"
    );
}

/// The server: one packet whose handler panics, answered ERR_HANDLER_FAILED.
fn child() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut server = Server::new(Config {
            port: 0,
            ..Config::default()
        });
        server.add_handler(|_c: Client, p: Packet| async move {
            if p.contains_key("a") {
                panic!("deliberate");
            }
        });
        let running = server.bind().await.unwrap();
        let mut client = RawClient::connect(running.local_addr()).await;
        client
            .send(Encoding::Json, &map(&[("a", Value::from(1))]))
            .await;
        client
            .expect_failure_then_close(ErrorCode::HandlerFailed, Encoding::Json)
            .await;
        running.handle().shutdown();
        running.wait().await.unwrap();
    });
}
