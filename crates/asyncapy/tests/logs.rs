//! Every log line of a session carries its session id, in the original's format.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use asyncapy::asyncaproto::{Encoding, Value};
use asyncapy::logging::PythonFormat;
use common::*;

// A current-thread runtime: the server's tasks run on this thread, where the
// capturing subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn session_lines_carry_the_session_id() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(captured.clone())
        .event_format(PythonFormat::new("[%(levelname)s] %(message)s", "%H").unwrap())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let running = start_echo(test_config()).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let m = map(&[("test", Value::from(1))]);
    client.request(Encoding::Json, &m).await;
    drop(client);
    let handle = running.handle();
    handle.shutdown();
    running.wait().await.unwrap();

    let text = captured.text();
    let started = text
        .lines()
        .find(|l| l.contains("New session started"))
        .unwrap_or_else(|| panic!("no session start line in:\n{text}"));
    let id = started.rsplit("UUID is ").next().unwrap().trim();
    assert_eq!(id.len(), 36, "a UUID: {started}");
    let prefix = format!("({id}) ");
    let session_lines: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
    assert!(session_lines.len() >= 3, "{text}");
    for line in &session_lines {
        assert!(line.contains(&prefix), "{line}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("[DEBUG] ")
            && l.contains(&prefix)
            && l.contains("Expected stream length is 13")),
        "{text}"
    );
    assert!(text.contains("[INFO] Serving on 127.0.0.1:"), "{text}");
}
