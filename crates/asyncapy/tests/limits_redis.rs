//! `limits_store = redis://...`: `session_limit` and `rate_limit` held across
//! two servers sharing one real `redis-server` (started by each test on a free
//! port), freed slots, entries of a server that died, and Redis going away
//! and coming back under both `limits_fail` policies.
//!
//! `redis-server` must be installed (`scripts/test-deps.sh`).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "key_stores/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Config, LimitsFail, RunningServer};
use common::*;
use redis_server::RedisServer;

async fn server(redis: &RedisServer, configure: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config {
        limits_store: Some(redis.url()),
        ..test_config()
    };
    configure(&mut config);
    start_echo(config).await
}

/// A session that got past admission: connected, and one echo answered.
/// `Err(code)` when it was refused.
async fn session(addr: SocketAddr) -> Result<RawClient, ErrorCode> {
    let mut client = RawClient::connect(addr).await;
    let packet = map(&[("hello", Value::from(1))]);
    client.send(Encoding::Json, &packet).await;
    let (_, reply) = client.read().await;
    match ErrorCode::from_map(&reply) {
        Some(code) => Err(code),
        None => Ok(client),
    }
}

/// The text of `GET /metrics`.
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

fn redis_command(redis: &RedisServer, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(&mut connection).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limit_holds_across_servers_and_a_freed_slot_is_usable_at_once() {
    let redis = RedisServer::start();
    let a = server(&redis, |c| c.session_limit = 2).await;
    let b = server(&redis, |c| c.session_limit = 2).await;
    let first = session(a.local_addr()).await.unwrap();
    let _second = session(b.local_addr()).await.unwrap();
    for addr in [a.local_addr(), b.local_addr()] {
        assert_eq!(
            session(addr).await.err(),
            Some(ErrorCode::SessionLimitReached)
        );
    }
    // One closes on A: its slot is free for B within 2 s.
    drop(first);
    let freed = Instant::now();
    let third = loop {
        match session(b.local_addr()).await {
            Ok(client) => break client,
            Err(code) => {
                assert_eq!(code, ErrorCode::SessionLimitReached);
                assert!(
                    freed.elapsed() < Duration::from_secs(2),
                    "the slot was not freed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(freed.elapsed() < Duration::from_secs(2));
    drop(third);
    for running in [a, b] {
        running.handle().shutdown();
        running.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_across_servers() {
    let redis = RedisServer::start();
    let a = server(&redis, |c| c.rate_limit = Some("20/1".parse().unwrap())).await;
    let b = server(&redis, |c| c.rate_limit = Some("20/1".parse().unwrap())).await;
    // Four sessions, two on each, fire 30 requests each at once.
    let mut clients = Vec::new();
    for addr in [
        a.local_addr(),
        b.local_addr(),
        a.local_addr(),
        b.local_addr(),
    ] {
        clients.push(RawClient::connect(addr).await);
    }
    let fired = clients.into_iter().map(|mut client| {
        tokio::spawn(async move {
            let mut frames = bytes::BytesMut::new();
            for i in 0..30 {
                let packet = map(&[("n", Value::from(i))]);
                frames.extend_from_slice(&client.frame_bytes(Encoding::Json, &packet));
            }
            client.send_raw(&frames).await;
            let (mut echoed, mut limited) = (0, 0);
            for _ in 0..30 {
                let (_, reply) = client.read().await;
                match ErrorCode::from_map(&reply) {
                    Some(ErrorCode::RateLimited) => limited += 1,
                    Some(other) => panic!("unexpected {other}"),
                    None => echoed += 1,
                }
            }
            (echoed, limited)
        })
    });
    let (mut echoed, mut limited) = (0, 0);
    for task in fired.collect::<Vec<_>>() {
        let (e, l) = task.await.unwrap();
        echoed += e;
        limited += l;
    }
    assert!((20..=35).contains(&echoed), "{echoed} echoes");
    assert!(
        limited >= 1 && echoed + limited == 120,
        "{limited} refusals"
    );
    for running in [a, b] {
        running.handle().shutdown();
        running.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entries_of_a_server_that_died_expire() {
    let redis = RedisServer::start();
    let running = server(&redis, |c| c.session_limit = 2).await;
    // Two sessions of a server that died 14.5 s after its last heartbeat
    // (what it left in Redis: entries expiring in half a second).
    let time = redis_command(&redis, &["TIME"]);
    let redis::Value::Array(parts) = time else {
        panic!("TIME: {time:?}")
    };
    let seconds: u64 = redis::from_redis_value(parts[0].clone()).unwrap();
    let expiry = (seconds * 1000 + 1500).to_string();
    redis_command(
        &redis,
        &[
            "ZADD",
            "asyncapy:limits:sessions:127.0.0.1",
            &expiry,
            "ghost-1",
            &expiry,
            "ghost-2",
        ],
    );
    assert_eq!(
        session(running.local_addr()).await.err(),
        Some(ErrorCode::SessionLimitReached)
    );
    let started = Instant::now();
    let _back = loop {
        match session(running.local_addr()).await {
            Ok(client) => break client,
            Err(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "the dead server's entries stay"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_by_default_and_coming_back_is_picked_up() {
    let mut redis = RedisServer::start();
    let running = server(&redis, |c| {
        c.session_limit = 1;
        c.rate_limit = Some("1000/1".parse().unwrap());
        #[cfg(feature = "metrics")]
        {
            c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        }
    })
    .await;
    let held = session(running.local_addr()).await.unwrap();
    redis.stop();
    // Open: sessions and packets go through, each failure logged and counted.
    let mut during = Vec::new();
    for _ in 0..2 {
        during.push(session(running.local_addr()).await.unwrap());
    }
    if let Some(metrics) = running.metrics_addr() {
        let text = scrape(metrics).await;
        let errors = text
            .lines()
            .find_map(|line| line.strip_prefix("asyncapy_limits_store_errors_total "))
            .and_then(|value| value.trim().parse::<f64>().ok());
        assert!(errors >= Some(2.0), "failures not counted:\n{text}");
    }
    drop((held, during));
    redis.restart();
    // Back (empty): the limit holds again, without a restart.
    let started = Instant::now();
    let _one = loop {
        match session(running.local_addr()).await {
            Ok(client) => break client,
            Err(_) => {
                assert!(started.elapsed() < Duration::from_secs(5));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        session(running.local_addr()).await.err(),
        Some(ErrorCode::SessionLimitReached)
    );
    running.handle().shutdown();
    running.wait().await.unwrap();
}

/// How many entries the sessions set of 127.0.0.1 holds.
fn entries(redis: &RedisServer) -> i64 {
    match redis_command(redis, &["ZCARD", "asyncapy:limits:sessions:127.0.0.1"]) {
        redis::Value::Int(n) => n,
        other => panic!("ZCARD answered {other:?}"),
    }
}

/// Sessions admitted while Redis was away (`limits_fail = open`), and the
/// ones admitted before it came back empty, count again after the next
/// heartbeat: the limit holds for them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_adds_back_the_sessions_redis_lost() {
    let mut redis = RedisServer::start();
    let running = server(&redis, |c| c.session_limit = 2).await;
    let before = session(running.local_addr()).await.unwrap();
    assert_eq!(entries(&redis), 1);
    redis.stop();
    let during = session(running.local_addr()).await.unwrap();
    redis.restart();
    assert_eq!(entries(&redis), 0, "Redis came back with entries");
    // Within one heartbeat (5 s) and its timeout, both are back.
    let started = Instant::now();
    while entries(&redis) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the live sessions were not added back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        session(running.local_addr()).await.err(),
        Some(ErrorCode::SessionLimitReached)
    );
    // And a session that ends still frees its entry at once.
    drop(during);
    let started = Instant::now();
    while entries(&redis) > 1 {
        assert!(started.elapsed() < Duration::from_secs(2), "not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(before);
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_limits_fail_closed_refuses() {
    let mut redis = RedisServer::start();
    let running = server(&redis, |c| {
        c.session_limit = 5;
        c.limits_fail = LimitsFail::Closed;
    })
    .await;
    let _held = session(running.local_addr()).await.unwrap();
    redis.stop();
    assert_eq!(
        session(running.local_addr()).await.err(),
        Some(ErrorCode::SessionLimitReached)
    );
    redis.restart();
    let started = Instant::now();
    while session(running.local_addr()).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "Redis back, still refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[test]
fn the_options_parse() {
    let config = Config::from_ini_str(
        "[AsyncAPY]\nlimits_store = redis://127.0.0.1:6379/2\nlimits_fail = closed\n",
    )
    .unwrap();
    assert_eq!(
        config.limits_store.as_deref(),
        Some("redis://127.0.0.1:6379/2")
    );
    assert_eq!(config.limits_fail, LimitsFail::Closed);
    let err = Config::from_ini_str("[AsyncAPY]\nlimits_store = 127.0.0.1:6379\n").unwrap_err();
    assert!(err.to_string().starts_with("limits_store: "), "{err}");
    assert!(Config::from_ini_str("[AsyncAPY]\nlimits_fail = maybe\n").is_err());
}
