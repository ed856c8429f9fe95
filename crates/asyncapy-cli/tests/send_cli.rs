//! `asyncapy send` against real servers on loopback.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};

use asyncapy::{Client, Config, Packet, Server};

/// An echo server that refuses packets holding "deny", on its own runtime.
fn server() -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut server = Server::new(Config {
        port: 0,
        ..Config::default()
    });
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(|_: &Client, p: &Packet| !p.contains_key("deny"));
    let running = runtime.block_on(server.bind()).unwrap();
    let addr = running.local_addr();
    runtime.spawn(running.wait());
    (addr, runtime)
}

fn send(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_asyncapy"))
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn prints_each_reply_pretty_or_compact() {
    let (addr, _rt) = server();
    let port = addr.port().to_string();
    let out = send(&["--port", &port, r#"{"a": 1, "b": [true]}"#], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}\n"
    );
    // One JSON object per line on stdin, in ZiProto, one compact line each.
    let out = send(
        &["--port", &port, "--compact", "-e", "ziproto"],
        Some("{\"n\": 1}\n\n{\"n\": 2}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"n\": 1}\n{\"n\": 2}\n"
    );
}

#[test]
fn failures_exit_non_zero_with_a_clear_message() {
    let (addr, _rt) = server();
    let port = addr.port().to_string();
    let out = send(&["--port", &port, r#"{"deny": 1}"#], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("ERR_NO_HANDLER"), "{stderr}");

    let out = send(&["--port", &port, "[1, 2]"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("not a JSON object"));

    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let out = send(&["--port", &closed_port, "{}"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("connection refused"));

    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let out = send(&["--port", &silent_port, "--timeout", "0.3", "{}"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("timed out"));
}
