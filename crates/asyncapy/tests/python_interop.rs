//! Interoperability with Python code written from the original documentation:
//! a Python client against our server, and our clients against a Python server.
//! Needs python3 with the packages of requirements-test.txt (`ziproto`).

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use asyncapy::asyncaproto::{ByteOrder, Encoding, Value};
use asyncapy::client::{AsyncClient, BlockingClient, ClientConfig};
use asyncapy::Config;
use common::process::{self, Lines};
use common::*;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn python() -> Command {
    let mut command = Command::new("python3");
    command.current_dir(script(""));
    command
}

fn fail_without_python(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named") {
        panic!(
            "the Python packages are missing: run `python3 -m pip install -r requirements-test.txt`\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_talks_to_our_server() {
    for (encoding, header_size, byteorder) in [
        ("json", 4u8, ByteOrder::Big),
        ("ziproto", 4, ByteOrder::Big),
        ("json", 2, ByteOrder::Little),
        ("ziproto", 2, ByteOrder::Little),
    ] {
        let running = start_echo(Config {
            header_size,
            byteorder,
            ..test_config()
        })
        .await;
        let port = running.local_addr().port().to_string();
        let mut command = python();
        command.args([
            "client.py",
            "--port",
            &port,
            "--encoding",
            encoding,
            "--header-size",
            &header_size.to_string(),
            "--byteorder",
            byteorder.as_str(),
        ]);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        fail_without_python(&output);
        assert!(
            output.status.success() && output.stdout.starts_with(b"OK"),
            "{encoding} {header_size} {byteorder}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The Python echo server, stopped when dropped.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    fn start(header_size: u8, byteorder: ByteOrder) -> PythonServer {
        let mut child = python()
            .args([
                "echo_server.py",
                "--header-size",
                &header_size.to_string(),
                "--byteorder",
                byteorder.as_str(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first line, within PATIENCE (the pipe is drained after it).
        let line = Lines::read(child.stdout.take().unwrap())
            .next_before(Instant::now() + PATIENCE)
            .unwrap_or_default();
        let Some(port) = line.trim().strip_prefix("listening on 127.0.0.1:") else {
            process::kill(child.id());
            let output = child.wait_with_output().unwrap();
            fail_without_python(&output);
            panic!(
                "the Python server did not start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let port = port.parse().unwrap();
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn sample() -> asyncapy::asyncaproto::Map {
    map(&[
        ("foo", Value::from("bar")),
        ("n", Value::from(-129)),
        ("big", Value::from(u64::MAX)),
        ("x", Value::from(1.5)),
        (
            "list",
            Value::Array(vec![
                Value::from(true),
                Value::Null,
                Value::from("\u{1F600}"),
            ]),
        ),
    ])
}

#[test]
fn our_blocking_client_talks_to_a_python_server() {
    for (encoding, header_size, byteorder) in [
        (Encoding::Json, 4u8, ByteOrder::Big),
        (Encoding::ZiProto, 4, ByteOrder::Big),
        (Encoding::ZiProto, 2, ByteOrder::Little),
    ] {
        let server = PythonServer::start(header_size, byteorder);
        let config = ClientConfig::new()
            .encoding(encoding)
            .header_size(header_size)
            .byteorder(byteorder);
        let mut client = BlockingClient::connect_to("127.0.0.1", server.port, config).unwrap();
        assert_eq!(client.request(sample()).unwrap(), sample(), "{encoding}");
        // Pipelined.
        for i in 0..20i64 {
            client.send(map(&[("i", Value::from(i))])).unwrap();
        }
        for i in 0..20i64 {
            assert_eq!(client.receive().unwrap()["i"], i);
        }
    }
}

#[tokio::test]
async fn our_async_client_talks_to_a_python_server() {
    let server = PythonServer::start(4, ByteOrder::Big);
    for encoding in [Encoding::Json, Encoding::ZiProto] {
        let config = ClientConfig::new().encoding(encoding);
        let mut client = AsyncClient::connect_to("127.0.0.1", server.port, config)
            .await
            .unwrap();
        assert_eq!(
            client.request(sample()).await.unwrap(),
            sample(),
            "{encoding}"
        );
        client.send(r#"{"foo": "bar"}"#).await.unwrap();
        let packet = client.receive_packet().await.unwrap();
        assert_eq!(packet.encoding(), encoding);
        assert_eq!(packet["foo"], "bar");
    }
}
