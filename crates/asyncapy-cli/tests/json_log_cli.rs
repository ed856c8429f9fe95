//! `asyncapy serve --log-format json`: one JSON object a line, with the
//! time, level, message, session id and peer, and each packet's handler,
//! outcome and duration (at DEBUG).

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;
use support::{Lines, PATIENCE};

#[test]
fn every_line_is_a_json_object_with_the_sessions_fields() {
    let mut started = support::serve(&["--log-format", "json", "--logging-level", "10"], 0, true);
    let mut log = Lines::read(started.child.stderr.take().unwrap());
    let mut stream = TcpStream::connect(&started.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}";
    stream.write_all(request).unwrap();
    let mut reply = vec![0u8; request.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, request);
    drop(stream);
    log.wait_for("the session's end", |l| {
        l.contains("The connection was closed")
    });
    assert!(support::signal(started.child.id(), "TERM"));
    let lines = log.until_end();
    let _ = started.child.wait();
    let objects: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for object in &objects {
        assert!(object["time"].as_str().unwrap().ends_with('Z'), "{object}");
        assert!(
            object["level"].is_string() && object["message"].is_string(),
            "{object}"
        );
    }
    let handled = objects
        .iter()
        .find(|o| o["message"] == "Packet handled")
        .unwrap_or_else(|| panic!("no handled packet in {lines:#?}"));
    assert_eq!(handled["handler"], "echo", "{handled}");
    assert_eq!(handled["outcome"], "ok");
    assert_eq!(handled["level"], "DEBUG");
    assert!(handled["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(handled["session"].as_str().unwrap().len(), 36, "{handled}");
    assert!(handled["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let started_line = objects
        .iter()
        .find(|o| {
            o["message"]
                .as_str()
                .unwrap()
                .starts_with("New session started")
        })
        .unwrap();
    assert_eq!(started_line["session"], handled["session"]);
}
