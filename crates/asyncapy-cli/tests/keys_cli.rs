//! `asyncapy keys` and `asyncapy serve --require-key` as a user runs them:
//! keys managed in an SQLite file while a server uses it, and two servers
//! sharing one Redis (a real `redis-server` each test starts for itself).

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

#[path = "../../asyncapy/tests/key_stores/redis_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use support::asyncapy;

/// Runs `asyncapy keys --store STORE ARGS` and returns its output.
fn keys(store: &str, args: &[&str]) -> Output {
    asyncapy()
        .args(["keys", "--store", store])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `asyncapy keys`, expects success, and parses its one line of JSON.
fn keys_ok(store: &str, args: &[&str]) -> Value {
    let output = keys(store, args);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "keys {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout:?}");
    serde_json::from_str(&stdout).unwrap()
}

/// Runs `asyncapy keys`, expects exit 1 and one line on stderr, and returns it.
fn keys_err(store: &str, args: &[&str]) -> String {
    let output = keys(store, args);
    assert_eq!(output.status.code(), Some(1), "keys {args:?} should fail");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("asyncapy: error: "), "{stderr}");
    stderr
}

fn sha256_hex_like(text: &Value) -> bool {
    text.as_str()
        .is_some_and(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn keys_commands_on_an_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("keys.db").display());

    let issued = keys_ok(&store, &["issue", "--metadata", r#"{"user": "ada"}"#]);
    let key = issued["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32);
    assert!(sha256_hex_like(&issued["digest"]));
    assert_eq!(issued["metadata"], json!({"user": "ada"}));
    let digest = issued["digest"].clone();

    let got = keys_ok(&store, &["get", &key]);
    assert_eq!(got, json!({"digest": digest, "metadata": {"user": "ada"}}));

    let updated = keys_ok(
        &store,
        &["update", &key, r#"{"user": "ada", "plan": "pro"}"#],
    );
    assert_eq!(updated["metadata"]["plan"], "pro");

    let bare = keys_ok(&store, &["issue", "--size", "48"]);
    assert_eq!(bare["key"].as_str().unwrap().len(), 48);
    assert_eq!(bare["metadata"], Value::Null);

    // list: digests and metadata, never a key.
    let list = keys_ok(&store, &["list"]);
    let listed = list.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains(bare["key"].as_str().unwrap()));
    assert!(listed.contains(&json!({"digest": digest, "metadata": {"user": "ada", "plan": "pro"}})));

    // reissue: a new key with the metadata; the old one is gone.
    let reissued = keys_ok(&store, &["reissue", &key]);
    let new = reissued["key"].as_str().unwrap().to_owned();
    assert_ne!(new, key);
    assert_eq!(reissued["revoked"], digest);
    assert_eq!(keys_ok(&store, &["get", &new])["metadata"]["plan"], "pro");
    let err = keys_err(&store, &["get", &key]);
    assert!(err.contains("no such API key"), "{err}");
    assert!(!err.contains(&key), "errors name digests, not keys: {err}");

    // A key from standard input ("-").
    let mut child = asyncapy()
        .args(["keys", "--store", &store, "revoke", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{new}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let revoked: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(sha256_hex_like(&revoked["revoked"]));

    for args in [
        &["revoke", new.as_str()][..],
        &["get", new.as_str()],
        &["reissue", new.as_str()],
        &["update", new.as_str(), "1"],
    ] {
        assert!(keys_err(&store, args).contains("no such API key"));
    }
    assert_eq!(keys_ok(&store, &["list"]).as_array().unwrap().len(), 1);

    // Bad input: one line, exit 1.
    assert!(keys_err(&store, &["issue", "--metadata", "{nope"]).contains("not JSON"));
    let err = keys_err("postgres://admin:secret@db/keys", &["list"]);
    assert!(
        err.contains("unknown key store") && !err.contains("secret"),
        "{err}"
    );
    let err = keys_err("sqlite:/no/such/dir/keys.db", &["list"]);
    assert!(err.contains("/no/such/dir/keys.db"), "{err}");
}

/// A running `asyncapy serve`, killed when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let mut args = args.to_vec();
        args.extend(["--timeout", "10"]);
        let started = support::serve(&args, 0, false);
        Served {
            child: started.child,
            addr: started.addr,
        }
    }

    fn connect(&self) -> Session {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Session(stream)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One AsyncAProto session (JSON, 4-byte big-endian header).
struct Session(TcpStream);

impl Session {
    /// Sends `packet` and returns the reply, or `None` if the server closed.
    fn request(&mut self, packet: &Value) -> Option<Value> {
        let payload = packet.to_string();
        let length = u32::try_from(payload.len() + 2).unwrap();
        let mut frame = length.to_be_bytes().to_vec();
        frame.extend([0x16, 0x00]);
        frame.extend(payload.as_bytes());
        self.0.write_all(&frame).unwrap();
        let mut head = [0u8; 4];
        if self.0.read_exact(&mut head).is_err() {
            return None;
        }
        let mut body = vec![0u8; usize::try_from(u32::from_be_bytes(head)).unwrap()];
        self.0.read_exact(&mut body).unwrap();
        Some(serde_json::from_slice(&body[2..]).unwrap())
    }
}

fn keyed(key: &str) -> Value {
    json!({"api_key": key, "n": 1})
}

fn refused() -> Value {
    json!({"status": "failure", "error": "ERR_NO_HANDLER"})
}

#[test]
fn a_running_server_accepts_a_key_issued_with_asyncapy_keys_and_refuses_it_after_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("keys.db").display());
    let server = Served::start(&["--require-key", "api_key", "--keys", &store]);

    // Issued after the server started: no restart needed.
    let key = keys_ok(&store, &["issue", "--metadata", r#"{"user": "ada"}"#])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut session = server.connect();
    assert_eq!(session.request(&keyed(&key)), Some(keyed(&key)));
    assert_eq!(session.request(&keyed(&key)), Some(keyed(&key)));

    // Refused right after the revoke, in the session that was accepted.
    keys_ok(&store, &["revoke", &key]);
    assert_eq!(session.request(&keyed(&key)), Some(refused()));
    assert_eq!(server.connect().request(&keyed(&key)), Some(refused()));

    // No key, a wrong key: refused.
    assert_eq!(server.connect().request(&json!({"n": 1})), Some(refused()));
    assert_eq!(server.connect().request(&keyed("guess")), Some(refused()));

    // A reissued key works at once, the old one no longer.
    let key = keys_ok(&store, &["issue"])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = keys_ok(&store, &["reissue", &key])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server.connect().request(&keyed(&new)), Some(keyed(&new)));
    assert_eq!(server.connect().request(&keyed(&key)), Some(refused()));
}

#[test]
fn serve_refuses_half_a_key_configuration_and_an_unreachable_store() {
    let output = asyncapy()
        .args(["serve", "--port", "0", "--keys", "sqlite:/tmp/unused.db"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--require-key"), "{stderr}");

    let output = asyncapy()
        .args(["serve", "--port", "0", "--require-key", "api_key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--keys"));

    // Nothing listens on port 1: the server does not start.
    let started = Instant::now();
    let output = asyncapy()
        .args(["serve", "--port", "0", "--require-key", "k"])
        .args(["--keys", "redis://127.0.0.1:1", "--keys-timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[test]
fn two_servers_sharing_one_redis_accept_the_same_key_issued_once() {
    let redis = RedisServer::start();
    let store = redis.url();
    let args = [
        "--require-key",
        "api_key",
        "--keys",
        &store,
        "--keys-timeout",
        "1",
    ];
    let (one, two) = (Served::start(&args), Served::start(&args));

    let issued = keys_ok(&store, &["issue", "--metadata", r#"{"user": "ada"}"#]);
    let key = issued["key"].as_str().unwrap().to_owned();
    for server in [&one, &two] {
        assert_eq!(server.connect().request(&keyed(&key)), Some(keyed(&key)));
    }
    let listed = keys_ok(&store, &["list"]);
    assert_eq!(
        listed,
        json!([{"digest": issued["digest"], "metadata": {"user": "ada"}}])
    );

    keys_ok(&store, &["revoke", &key]);
    for server in [&one, &two] {
        assert_eq!(server.connect().request(&keyed(&key)), Some(refused()));
    }

    // A prefix is its own key set.
    let other = keys_ok(&store, &["--keys-prefix", "other:", "issue"]);
    let other_key = other["key"].as_str().unwrap();
    assert_eq!(one.connect().request(&keyed(other_key)), Some(refused()));
}
