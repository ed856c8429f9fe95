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

/// A file of packets in a scratch folder of the target directory.
fn packet_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("send_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.jsonl", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn file_packets_are_sent_in_order_after_the_arguments() {
    let (addr, _rt) = server();
    let port = addr.port().to_string();
    // One JSON object per line; blank lines are skipped.
    let file = packet_file("packets", b"{\"n\": 1}\n\n  \n{\"n\": 2, \"s\": \"two\"}\n");
    let file = file.to_str().unwrap();
    let out = send(&["--port", &port, "--compact", "-f", file], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"n\": 1}\n{\"n\": 2, \"s\": \"two\"}\n"
    );
    // With packets as arguments too: those first, then the file's; stdin
    // is not read.
    let out = send(
        &["--port", &port, "--compact", "--file", file, "{\"n\": 0}"],
        Some("{\"stdin\": true}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"n\": 0}\n{\"n\": 1}\n{\"n\": 2, \"s\": \"two\"}\n"
    );
    // "-" is standard input.
    let out = send(
        &["--port", &port, "--compact", "-f", "-"],
        Some("{\"stdin\": true}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"stdin\": true}\n"
    );
}

#[test]
fn a_bad_file_fails_with_a_clear_message_and_sends_nothing() {
    let (addr, _rt) = server();
    let port = addr.port().to_string();
    let fails = |args: &[&str]| -> String {
        let mut all = vec!["--port", port.as_str(), "--compact"];
        all.extend_from_slice(args);
        let out = send(&all, None);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(out.stdout, b"", "nothing was sent: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    };

    let missing = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-packets.jsonl");
    let missing = missing.to_str().unwrap();
    let stderr = fails(&["-f", missing]);
    assert!(
        stderr.contains(&format!("cannot open {missing}: No such file or directory")),
        "{stderr}"
    );

    // The second line is not JSON: the first is not sent either.
    let invalid = packet_file("invalid", b"{\"n\": 1}\n{\"n\": \n");
    let stderr = fails(&["-f", invalid.to_str().unwrap()]);
    assert!(
        stderr.contains("packet 2 is not a JSON object: {\"n\": "),
        "{stderr}"
    );

    // JSON, but not an object.
    let array = packet_file("array", b"[1, 2]\n");
    let stderr = fails(&["-f", array.to_str().unwrap()]);
    assert!(
        stderr.contains("packet 1 is not a JSON object: [1, 2]"),
        "{stderr}"
    );

    // Not text.
    let binary = packet_file("binary", b"{\"n\": 1}\n\xff\xfe\n");
    let stderr = fails(&["-f", binary.to_str().unwrap()]);
    assert!(stderr.contains("cannot read the packets"), "{stderr}");

    // A folder.
    let stderr = fails(&["-f", env!("CARGO_TARGET_TMPDIR")]);
    assert!(stderr.contains("cannot read the packets"), "{stderr}");

    // Nothing but blank lines.
    let empty = packet_file("empty", b"\n\n");
    let stderr = fails(&["-f", empty.to_str().unwrap()]);
    assert!(stderr.contains("no packet to send"), "{stderr}");
}
