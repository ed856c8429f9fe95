//! Bytes recorded from the original AsyncAPY 0.5 (Python), replayed against our server.
//!
//! `tests/vectors/original-0.5.json` holds what the original server answered
//! to a fixed set of requests (and what the original client sends), recorded by
//! `scripts/record-original-vectors.py` from the original's source at the commit
//! the file names. Each case is sent here, over a real loopback socket, to our
//! server running the same app with the same configuration:
//!
//! * `compare: equal`: our reply must be the recorded bytes exactly, and after a
//!   failure reply we close as the original did; after an echo we keep the
//!   session open (PROTOCOL.md §3: the original closed after every packet);
//! * `compare: documented` / `undocumented`: the file gives our expected bytes
//!   (`ours`) and the reason (PROTOCOL.md's, or "not in PROTOCOL.md" for a
//!   difference reported but not yet documented there); ours must match them,
//!   and the recorded original must really differ from them.
//!
//! The file is also checked against itself: every outcome label is derived
//! again from its bytes, so a vector edited into a different behaviour without
//! its bytes (or the reverse) fails.
//!
//! The original client's recorded packets: our server echoes each with the
//! original server's recorded bytes, and our clients (async and blocking) put
//! the same bytes on the wire for the same call and read the original server's
//! recorded reply.
//!
//! Re-record (by hand; the original is never fetched by CI):
//! `python3 scripts/record-original-vectors.py ORIGINAL_SRC_DIR --commit ID`.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use asyncapy::asyncaproto::{json, ByteOrder, Encoding, Map, Value};
use asyncapy::client::{AsyncClient, BlockingClient, ClientConfig};
use asyncapy::filters::Fields;
use asyncapy::{Client, Config, Packet, RunningServer, Server};
use common::*;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const VECTORS: &str = include_str!("vectors/original-0.5.json");

fn vectors() -> Map {
    match json::decode(VECTORS.as_bytes()).expect("the vector file is JSON") {
        Value::Map(map) => map,
        other => panic!("the vector file is a {}", other.kind()),
    }
}

fn field<'a>(map: &'a Map, key: &str) -> &'a Value {
    map.get(key)
        .unwrap_or_else(|| panic!("no {key:?} in {map}"))
}

fn text<'a>(map: &'a Map, key: &str) -> &'a str {
    field(map, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {map}"))
}

fn object<'a>(map: &'a Map, key: &str) -> &'a Map {
    field(map, key)
        .as_map()
        .unwrap_or_else(|| panic!("{key:?} is not a map in {map}"))
}

fn list<'a>(map: &'a Map, key: &str) -> &'a [Value] {
    field(map, key)
        .as_array()
        .unwrap_or_else(|| panic!("{key:?} is not a list in {map}"))
}

fn number(map: &Map, key: &str) -> u64 {
    field(map, key)
        .as_u64()
        .unwrap_or_else(|| panic!("{key:?} is not a count in {map}"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn bytes(map: &Map, key: &str) -> Vec<u8> {
    unhex(text(map, key))
}

/// The frame layout of a server configuration of the file (`servers`), and
/// whether its app takes only the field `foo` (the `routes` app).
#[derive(Clone, Copy, Debug)]
struct Layout {
    header_size: usize,
    byteorder: ByteOrder,
    foo_only: bool,
}

fn layout(server: &Map) -> Layout {
    Layout {
        header_size: usize::try_from(number(server, "header_size")).unwrap(),
        byteorder: text(server, "byteorder").parse().unwrap(),
        foo_only: server.get("app").and_then(Value::as_str) == Some("routes"),
    }
}

/// The label the recorder gives a reply and its ending, derived again here
/// from the bytes with our own codecs.
fn outcome(reply: &[u8], then: &str, layout: Layout) -> String {
    let hs = layout.header_size;
    let what = if reply.is_empty() {
        "no reply".to_string()
    } else if reply.len() < hs + 2 || declared_length(&reply[..hs], layout) != reply.len() - hs {
        "bytes that are not one frame".to_string()
    } else {
        let encoding = if reply[hs + 1] == 0 {
            Encoding::Json
        } else {
            Encoding::ZiProto
        };
        let name = if encoding == Encoding::Json {
            "json"
        } else {
            "ziproto"
        };
        match encoding.decode(&reply[hs + 2..]) {
            Ok(map)
                if map.get("status").and_then(Value::as_str) == Some("failure")
                    && map.get("error").is_some_and(Value::is_str) =>
            {
                format!("{} in {name}", map["error"].as_str().unwrap())
            }
            _ => format!("a reply in {name}"),
        }
    };
    format!("{what}, then {then}")
}

fn declared_length(head: &[u8], layout: Layout) -> usize {
    let mut n: u64 = 0;
    for i in 0..head.len() {
        let b = match layout.byteorder {
            ByteOrder::Big => head[i],
            ByteOrder::Little => head[head.len() - 1 - i],
        };
        n = (n << 8) | u64::from(b);
    }
    usize::try_from(n).unwrap()
}

fn frame(layout: Layout, encoding: u8, payload: &[u8]) -> Vec<u8> {
    let n = (payload.len() + 2) as u64;
    let be = n.to_be_bytes();
    let mut head = be[8 - layout.header_size..].to_vec();
    if layout.byteorder == ByteOrder::Little {
        head.reverse();
    }
    head.extend([22, encoding]);
    head.extend_from_slice(payload);
    head
}

async fn failing(client: Client, packet: Packet) -> Result<(), std::io::Error> {
    let _ = (client, packet);
    Err(std::io::Error::other("a handler failure"))
}

/// Our server running the file's app with its configuration.
async fn start(server: &Map) -> RunningServer {
    let layout = layout(server);
    let config = Config {
        header_size: u8::try_from(layout.header_size).unwrap(),
        byteorder: layout.byteorder,
        timeout: Duration::from_secs(number(server, "timeout")),
        session_limit: usize::try_from(number(server, "session_limit")).unwrap(),
        ..test_config()
    };
    let mut ours = Server::new(config);
    match text(server, "app") {
        // The original's "hold" app is an echo whose answer waits for the
        // recorder; ours answers at once and keeps the session, which holds
        // the session as long.
        "echo" | "hold" => {
            ours.register_handler(echo);
        }
        "routes" => {
            ours.add_handler(echo).filter(Fields::new().field("foo"));
            ours.add_handler(failing)
                .filter(Fields::new().field("fail"));
        }
        other => panic!("no app {other:?}"),
    }
    ours.bind().await.expect("server binds")
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = within_patience("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until `n` bytes came or the peer closed; more may come with the last read.
async fn read_at_least(stream: &mut TcpStream, n: usize) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        while got.len() < n {
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf).await {
                Ok(0) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    })
    .await;
    match read {
        Ok(()) => Ok(got),
        Err(_) => Err(format!(
            "no {n} bytes within {PATIENCE:?}; got {}",
            hex(&got)
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The connection ends (EOF) with nothing more on it.
async fn expect_closed(stream: &mut TcpStream) -> Result<(), String> {
    let extra = read_at_least(stream, usize::MAX).await?;
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!("more bytes before the close: {}", hex(&extra)))
    }
}

/// The session is still open: a ping in the session's encoding (one the app
/// takes) is echoed.
async fn expect_open(stream: &mut TcpStream, layout: Layout, encoding: u8) -> Result<(), String> {
    let ping = match (encoding, layout.foo_only) {
        (0, false) => frame(layout, 0, br#"{"ping": "pong"}"#),
        (0, true) => frame(layout, 0, br#"{"foo": "pong"}"#),
        (_, false) => frame(layout, 1, b"\x81\xa4ping\xa4pong"),
        (_, true) => frame(layout, 1, b"\x81\xa3foo\xa4pong"),
    };
    stream
        .write_all(&ping)
        .await
        .map_err(|e| format!("the session is not open: {e}"))?;
    let echo = read_at_least(stream, ping.len()).await?;
    if echo == ping {
        Ok(())
    } else {
        Err(format!(
            "the session is not open: a ping got {}",
            hex(&echo)
        ))
    }
}

/// Sends one case to our server and checks our reply and what follows it.
async fn run_case(addr: SocketAddr, layout: Layout, case: &Map) -> Result<(), String> {
    let (reply, then) = if text(case, "compare") == "equal" {
        (
            bytes(object(case, "original"), "reply"),
            text(case, "ours_then"),
        )
    } else {
        let ours = object(case, "ours");
        (bytes(ours, "reply"), text(ours, "then"))
    };
    let pause = case
        .get("pause_ms")
        .and_then(Value::as_u64)
        .map(Duration::from_millis);
    let mut stream = connect(addr).await;
    for (i, chunk) in list(case, "request").iter().enumerate() {
        if i > 0 {
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
        stream
            .write_all(&unhex(chunk.as_str().unwrap()))
            .await
            .map_err(|e| format!("write: {e}"))?;
    }
    if case.get("shutdown_write").and_then(Value::as_bool) == Some(true) {
        stream
            .shutdown()
            .await
            .map_err(|e| format!("shutdown: {e}"))?;
    }
    let got = read_at_least(&mut stream, reply.len().max(1)).await?;
    if got != reply {
        return Err(format!(
            "our reply {} ({})\n   expected {} ({})",
            hex(&got),
            outcome(&got, "?", layout),
            hex(&reply),
            outcome(&reply, then, layout)
        ));
    }
    match then {
        "closed" => expect_closed(&mut stream).await,
        "open" => expect_open(&mut stream, layout, reply[layout.header_size + 1]).await,
        other => Err(format!("no such ending {other:?}")),
    }
}

#[test]
fn the_vector_file_is_consistent_with_its_bytes() {
    let doc = vectors();
    let about = object(&doc, "recorded_with");
    let commit = text(about, "commit");
    assert!(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "the original's commit id: {commit}"
    );
    for key in ["python", "trio", "ziproto", "setup_py_version"] {
        assert!(!text(about, key).is_empty(), "recorded_with.{key}");
    }
    let reasons = object(&doc, "reasons");
    let servers = object(&doc, "servers");
    let cases = list(&doc, "cases");
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    for case in cases {
        let case = case.as_map().unwrap();
        let name = text(case, "name");
        assert!(names.insert(name), "{name} twice");
        let layout = layout(object(servers, text(case, "server")));
        let original = object(case, "original");
        let (reply, then) = (bytes(original, "reply"), text(original, "then"));
        assert_eq!(
            text(original, "outcome"),
            outcome(&reply, then, layout),
            "{name}: the recorded outcome is not what its bytes say"
        );
        match text(case, "compare") {
            "equal" => {
                assert!(
                    case.get("ours").is_none() && case.get("reason").is_none(),
                    "{name}: an equal case carries no expectation of its own"
                );
                let failure = text(original, "outcome").starts_with("ERR_");
                let expected_then = if failure || reply.is_empty() {
                    then
                } else {
                    // An echo: the original closed, we keep the session.
                    assert_eq!(then, "closed", "{name}");
                    "open"
                };
                assert_eq!(text(case, "ours_then"), expected_then, "{name}: ours_then");
            }
            kind @ ("documented" | "undocumented") => {
                let reason = text(reasons, text(case, "reason"));
                let prefix = if kind == "documented" {
                    "PROTOCOL.md §"
                } else {
                    "not in PROTOCOL.md"
                };
                assert!(
                    reason.starts_with(prefix),
                    "{name}: a {kind} difference's reason starts with {prefix:?}: {reason}"
                );
                let ours = object(case, "ours");
                let (ours_reply, ours_then) = (bytes(ours, "reply"), text(ours, "then"));
                assert_eq!(
                    text(ours, "outcome"),
                    outcome(&ours_reply, ours_then, layout),
                    "{name}: our expected outcome is not what its bytes say"
                );
                assert!(
                    (ours_reply.as_slice(), ours_then) != (reply.as_slice(), then),
                    "{name}: marked a difference, but the original did the same: make it equal"
                );
            }
            other => panic!("{name}: compare {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_case_against_our_server() {
    let doc = vectors();
    let servers = object(&doc, "servers");
    let mut running = std::collections::HashMap::new();
    for (name, server) in servers.iter() {
        if name != "limit1" {
            let server = server.as_map().unwrap();
            running.insert(name.as_str(), (start(server).await, layout(server)));
        }
    }
    let cases = list(&doc, "cases");
    let results = join_all(cases.iter().map(|case| {
        let case = case.as_map().unwrap();
        let (server, layout) = &running[text(case, "server")];
        let addr = server.local_addr();
        let layout = *layout;
        async move { (text(case, "name"), run_case(addr, layout, case).await) }
    }))
    .await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from the file:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_session_limit_as_recorded() {
    let doc = vectors();
    let case = object(&doc, "session_limit");
    let server = object(object(&doc, "servers"), text(case, "server"));
    let layout = layout(server);
    let running = start(server).await;
    let addr = running.local_addr();
    let original = object(case, "original");
    assert_eq!(text(case, "compare"), "equal");

    // The first session: its packet answered as the original answered it
    // (ours at once), and the session kept.
    let mut first = connect(addr).await;
    first
        .write_all(&bytes(case, "first_request"))
        .await
        .unwrap();
    let reply = bytes(original, "first_reply");
    assert_eq!(read_at_least(&mut first, reply.len()).await.unwrap(), reply);
    assert!(
        text(object(&doc, "reasons"), text(case, "reason_first_then"))
            .starts_with("PROTOCOL.md §3")
    );
    assert_eq!(text(case, "ours_first_then"), "open");

    // A second session from the same IP: refused with the original's bytes.
    let mut second = connect(addr).await;
    second
        .write_all(&bytes(case, "second_request"))
        .await
        .unwrap();
    let refusal = bytes(original, "second_reply");
    assert_eq!(text(original, "second_then"), "closed");
    assert_eq!(
        text(original, "second_outcome"),
        outcome(&refusal, "closed", layout)
    );
    assert_eq!(
        read_at_least(&mut second, refusal.len()).await.unwrap(),
        refusal,
        "the refusal"
    );
    expect_closed(&mut second).await.unwrap();
    expect_open(&mut first, layout, 0).await.unwrap();
}

#[tokio::test]
async fn the_original_clients_requests_are_echoed_byte_for_byte() {
    let doc = vectors();
    let sends = list(&doc, "original_client");
    let mut echoed = 0;
    for send in sends {
        let send = send.as_map().unwrap();
        let name = text(send, "name");
        let sent = bytes(send, "sent");
        if let Some(error) = send.get("error") {
            // What the original client itself refuses to send (recorded as a fact).
            assert!(sent.is_empty(), "{name}: an error and bytes");
            assert!(error.is_str(), "{name}");
            continue;
        }
        let client = object(send, "client");
        let layout = layout(client);
        let running = start_echo(Config {
            header_size: u8::try_from(layout.header_size).unwrap(),
            byteorder: layout.byteorder,
            ..test_config()
        })
        .await;
        let mut stream = connect(running.local_addr()).await;
        stream.write_all(&sent).await.unwrap();
        // The original server echoed the packet with the bytes the client
        // wrote (Python's json.dumps, the ziproto package's encoder); ours
        // answers with the original server's bytes.
        let original = object(send, "original_server");
        let original_reply = bytes(original, "reply");
        assert_eq!(
            hex(&original_reply),
            hex(&sent),
            "{name}: the original's echo"
        );
        let reply = read_at_least(&mut stream, sent.len()).await.unwrap();
        assert_eq!(
            hex(&reply),
            hex(&original_reply),
            "{name}: our echo of the original client's packet"
        );
        let encoding = sent[layout.header_size + 1];
        assert_eq!(
            encoding,
            u8::from(text(client, "encoding") == "ziproto"),
            "{name}"
        );
        expect_open(&mut stream, layout, encoding).await.unwrap();
        echoed += 1;
    }
    assert!(
        echoed >= 5,
        "{echoed} packets of the original client echoed"
    );
    if let Some(tls) = doc.get("original_client_tls").and_then(Value::as_map) {
        // Recorded once, by hand, with our TLS server (see the file's note).
        assert_eq!(tls.get("echoed").and_then(Value::as_bool), Some(true));
        assert_eq!(bytes(tls, "received"), bytes(tls, "sent"));
    }
}

/// A stand-in for the original server on a port of its own: it reads a
/// request of `expected.len()` bytes, answers `reply` (the original server's
/// recorded bytes) and closes, as the original did. Returns the port and, when
/// done, the request it read.
async fn stand_in(expected: usize, reply: Vec<u8>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut stream, _) = within_patience("accept", listener.accept()).await.unwrap();
        let request = read_at_least(&mut stream, expected).await.unwrap();
        stream.write_all(&reply).await.unwrap();
        stream.shutdown().await.unwrap();
        request
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_clients_send_the_original_clients_bytes_and_read_the_original_servers_reply() {
    let doc = vectors();
    let mut checked = 0;
    for send in list(&doc, "original_client") {
        let send = send.as_map().unwrap();
        if send.get("error").is_some() {
            continue;
        }
        let name = text(send, "name");
        let client = object(send, "client");
        let layout = layout(client);
        let encoding = if text(client, "encoding") == "ziproto" {
            Encoding::ZiProto
        } else {
            Encoding::Json
        };
        let config = ClientConfig::new()
            .header_size(u8::try_from(layout.header_size).unwrap())
            .byteorder(layout.byteorder)
            .encoding(encoding)
            .timeout(PATIENCE);
        let payload = text(send, "payload_json").to_string();
        let expected = json::decode(payload.as_bytes()).unwrap();
        let sent = bytes(send, "sent");
        let original_reply = bytes(object(send, "original_server"), "reply");

        let (port, server) = stand_in(sent.len(), original_reply.clone()).await;
        let mut ours = AsyncClient::connect_to("127.0.0.1", port, config.clone())
            .await
            .unwrap();
        let reply = ours.request(payload.as_str()).await.unwrap();
        let request = within_patience("the stand-in", server).await.unwrap();
        assert_eq!(hex(&request), hex(&sent), "{name}: AsyncClient's bytes");
        assert_eq!(Value::Map(reply), expected, "{name}: AsyncClient's reply");

        let (port, server) = stand_in(sent.len(), original_reply).await;
        let reply = tokio::task::spawn_blocking(move || {
            let mut ours = BlockingClient::connect_to("127.0.0.1", port, config).unwrap();
            ours.request(payload.as_str()).unwrap()
        })
        .await
        .unwrap();
        let request = within_patience("the stand-in", server).await.unwrap();
        assert_eq!(hex(&request), hex(&sent), "{name}: BlockingClient's bytes");
        assert_eq!(
            Value::Map(reply),
            expected,
            "{name}: BlockingClient's reply"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} packets checked");
}
