//! The framework's rules over real sockets: groups, filters, propagation,
//! failures, timeouts, sessions, lifecycle.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::*;
use std::net::Ipv4Addr;

fn tagged(tag: &str) -> Map {
    map(&[("from", Value::from(tag))])
}

async fn serve(server: Server) -> asyncapy::RunningServer {
    server.bind().await.expect("binds")
}

#[tokio::test]
async fn groups_run_in_ascending_order_and_first_match_wins_in_each() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("group 1")).await })
        .group(1);
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("group 0, first")).await });
    server.add_handler(|c: Client, _p: Packet| async move {
        c.send(tagged("group 0, second (never)")).await
    });
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("group -1")).await })
        .group(-1);
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    client.send(Encoding::Json, &map(&[])).await;
    for expected in ["group -1", "group 0, first", "group 1"] {
        let (_, reply) = client.read().await;
        assert_eq!(reply, tagged(expected));
    }
    // The session goes on.
    client.send(Encoding::Json, &map(&[])).await;
    assert_eq!(client.read().await.1, tagged("group -1"));
}

#[tokio::test]
async fn filters_choose_the_handler_and_all_of_a_handlers_filters_must_pass() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("a and b")).await })
        .filter(|_: &Client, p: &Packet| p.contains_key("a"))
        .filter(|_: &Client, p: &Packet| p.contains_key("b"));
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("a only")).await })
        .filter(|_: &Client, p: &Packet| p.contains_key("a"));
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let both = map(&[("a", Value::Null), ("b", Value::Null)]);
    assert_eq!(
        client.request(Encoding::Json, &both).await.1,
        tagged("a and b")
    );
    let a = map(&[("a", Value::Null)]);
    assert_eq!(client.request(Encoding::Json, &a).await.1, tagged("a only"));
    // Nothing accepts {"b": null}: ERR_NO_HANDLER, then the session closes.
    client
        .send(Encoding::Json, &map(&[("b", Value::Null)]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
    assert_still_serving_any(running.local_addr()).await;
}

/// A fresh client's packet reaches some handler (any reply but a failure).
async fn assert_still_serving_any(addr: std::net::SocketAddr) {
    let mut client = RawClient::connect(addr).await;
    let (_, reply) = client
        .request(Encoding::Json, &map(&[("a", Value::Null)]))
        .await;
    assert_eq!(ErrorCode::from_map(&reply), None, "{reply:?}");
}

#[tokio::test]
async fn async_filters_are_awaited() {
    use asyncapy::filters::Check;
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(AsyncAllow);
    struct AsyncAllow;
    impl asyncapy::Filter for AsyncAllow {
        fn check(&self, _: &Client, packet: &Packet) -> Check {
            let allowed = packet.get("token").and_then(|v| v.as_str()) == Some("open sesame");
            Check::later(async move {
                tokio::task::yield_now().await;
                allowed
            })
        }
    }
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let good = map(&[("token", Value::from("open sesame"))]);
    assert_eq!(client.request(Encoding::ZiProto, &good).await.1, good);
    client
        .send(Encoding::ZiProto, &map(&[("token", Value::from("no"))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::ZiProto)
        .await;
}

#[tokio::test]
async fn stop_propagation_stops_later_groups_but_not_the_session() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, p: Packet| async move {
            if p.contains_key("stop") {
                p.stop_propagation();
            }
            c.send(tagged("first")).await
        })
        .group(-1);
    server.add_handler(|c: Client, _p: Packet| async move { c.send(tagged("second")).await });
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    client
        .send(Encoding::Json, &map(&[("stop", Value::from(true))]))
        .await;
    client.send(Encoding::Json, &map(&[])).await;
    let replies: Vec<Map> = [
        client.read().await.1,
        client.read().await.1,
        client.read().await.1,
    ]
    .into();
    assert_eq!(
        replies,
        [tagged("first"), tagged("first"), tagged("second")]
    );
}

#[tokio::test]
async fn a_failing_handler_gets_err_handler_failed_and_its_session_closes() {
    let mut server = Server::new(test_config());
    server.add_handler(|c: Client, p: Packet| async move {
        if p.contains_key("fail") {
            return Err(std::io::Error::other("database unavailable: secret detail"));
        }
        c.send(&p).await.map_err(std::io::Error::other)
    });
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    client
        .send(Encoding::ZiProto, &map(&[("fail", Value::Null)]))
        .await;
    let frame = client.read_frame().await.expect("a failure reply");
    assert!(
        !String::from_utf8_lossy(&frame.payload).contains("secret"),
        "no internal detail reaches the client"
    );
    let reply = frame.encoding.decode(&frame.payload).unwrap();
    assert_eq!(ErrorCode::from_map(&reply), Some(ErrorCode::HandlerFailed));
    client.expect_closed().await;
    assert_still_serving(running.local_addr()).await;
}

#[tokio::test]
async fn a_handler_running_past_the_timeout_is_cancelled_with_err_timed_out() {
    /// Dropped with the handler's future: reports whether the handler had
    /// got past its await by then.
    struct DropGuard {
        finished: Arc<AtomicUsize>,
        dropped: Option<tokio::sync::oneshot::Sender<usize>>,
    }
    impl Drop for DropGuard {
        fn drop(&mut self) {
            if let Some(dropped) = self.dropped.take() {
                let _ = dropped.send(self.finished.load(Ordering::SeqCst));
            }
        }
    }
    let finished = Arc::new(AtomicUsize::new(0));
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let timeout = Duration::from_millis(300);
    let mut server = Server::new(Config {
        timeout,
        ..test_config()
    });
    let counter = finished.clone();
    server.add_handler(move |c: Client, p: Packet| {
        let guard = DropGuard {
            finished: counter.clone(),
            dropped: dropped_tx.lock().unwrap().take(),
        };
        async move {
            let guard = guard;
            if p.contains_key("slow") {
                // Past the timeout: a handler that kept running would count
                // itself finished 1.7 s after the deadline.
                tokio::time::sleep(Duration::from_secs(2)).await;
                guard.finished.fetch_add(1, Ordering::SeqCst);
            }
            c.send(&p).await
        }
    });
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let started = std::time::Instant::now();
    client
        .send(Encoding::ZiProto, &map(&[("slow", Value::Null)]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::TimedOut, Encoding::ZiProto)
        .await;
    let answered_after = started.elapsed();
    assert!(
        answered_after >= timeout && answered_after < Duration::from_secs(2),
        "ERR_TIMED_OUT after {answered_after:?}, the timeout is {timeout:?}"
    );
    // The handler's future was dropped (cancelled), before it could finish.
    let finished_when_dropped = within_patience("the handler's future is dropped", dropped_rx)
        .await
        .expect("the guard reports its drop");
    assert_eq!(
        finished_when_dropped, 0,
        "the handler was cancelled, not run to its end"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "dropped at the deadline, not after the handler's own sleep"
    );
    assert_eq!(running.handle().session_count(), 0);
    assert_still_serving(running.local_addr()).await;
}

#[tokio::test]
async fn handlers_share_state_through_captured_values() {
    let hits = Arc::new(AtomicUsize::new(0));
    let mut server = Server::new(test_config());
    let counter = hits.clone();
    server.add_handler(move |c: Client, _p: Packet| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { c.send(map(&[("hits", Value::from(n))])).await }
    });
    let running = serve(server).await;
    for expected in 1..=3usize {
        let mut client = RawClient::connect(running.local_addr()).await;
        let (_, reply) = client.request(Encoding::Json, &map(&[])).await;
        assert_eq!(reply.get("hits"), Some(&Value::from(expected)));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_session_limit_applies_per_client_ip() {
    let running = start_echo(Config {
        session_limit: 2,
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let ping = map(&[("p", Value::from(1))]);
    let mut a1 = RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    let mut a2 = RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    a1.request(Encoding::Json, &ping).await;
    a2.request(Encoding::Json, &ping).await;
    let mut a3 = RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    a3.expect_failure_then_close(ErrorCode::SessionLimitReached, Encoding::Json)
        .await;
    // Another IP is not affected.
    let mut b1 = RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 3), addr).await;
    assert_eq!(b1.request(Encoding::Json, &ping).await.1, ping);
    // Once a session of 127.0.0.2 ends, its slot is free again.
    drop(a1);
    within_patience("the freed slot is usable again", async {
        loop {
            let mut again = RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
            again.send(Encoding::Json, &ping).await;
            let (_, reply) = again.read().await;
            if reply == ping {
                break;
            }
            assert_eq!(
                ErrorCode::from_map(&reply),
                Some(ErrorCode::SessionLimitReached)
            );
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn sessions_can_be_listed_and_closed_from_another_session() {
    let mut server = Server::new(test_config());
    server.add_handler(|c: Client, p: Packet| async move {
        let sessions = c.get_sessions();
        if p.contains_key("close_others") {
            for session in &sessions {
                if *session != c.session() {
                    session.close();
                }
            }
        }
        let ids: Vec<Value> = sessions
            .iter()
            .map(|s| Value::from(s.id().to_string()))
            .collect();
        c.send(map(&[("sessions", Value::Array(ids))])).await
    });
    let running = serve(server).await;
    let addr = running.local_addr();
    let mut first = RawClient::connect(addr).await;
    let (_, reply) = first.request(Encoding::Json, &map(&[])).await;
    assert_eq!(
        reply
            .get("sessions")
            .and_then(|v| v.as_array())
            .map(Vec::len),
        Some(1)
    );
    let mut second = RawClient::connect(addr).await;
    let (_, reply) = second.request(Encoding::Json, &map(&[])).await;
    assert_eq!(
        reply
            .get("sessions")
            .and_then(|v| v.as_array())
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(running.handle().session_count(), 2);
    second
        .request(Encoding::Json, &map(&[("close_others", Value::Null)]))
        .await;
    first.expect_closed().await;
    let (_, reply) = second.request(Encoding::Json, &map(&[])).await;
    assert_eq!(
        reply
            .get("sessions")
            .and_then(|v| v.as_array())
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn send_and_close_answers_then_closes() {
    let mut server = Server::new(test_config());
    server.add_handler(|c: Client, p: Packet| async move { c.send_and_close(&p).await });
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let m = map(&[("bye", Value::from(1))]);
    assert_eq!(client.request(Encoding::Json, &m).await.1, m);
    client.expect_closed().await;
}

#[tokio::test]
async fn setup_runs_before_serving_and_shutdown_after_the_last_session() {
    let log = Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    let mut server = Server::new(test_config());
    let (setup_log, shutdown_log) = (log.clone(), log.clone());
    server.on_setup(move || async move { setup_log.lock().unwrap().push("setup") });
    server.on_shutdown(move || async move { shutdown_log.lock().unwrap().push("shutdown") });
    server.add_handler(echo);
    let running = serve(server).await;
    assert_eq!(*log.lock().unwrap(), ["setup"]);
    assert_still_serving(running.local_addr()).await;
    running.handle().shutdown();
    running.wait().await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["setup", "shutdown"]);
}

#[tokio::test]
async fn a_failing_setup_stops_the_start() {
    let mut server = Server::new(test_config());
    server.on_setup(|| async { Err(std::io::Error::other("no database")) });
    server.add_handler(echo);
    let err = server.bind().await.err().expect("must fail");
    assert_eq!(err.to_string(), "setup failed: no database");
}

#[tokio::test]
async fn graceful_shutdown_answers_in_flight_requests_and_refuses_new_connections() {
    let mut server = Server::new(Config {
        grace_period: Duration::from_secs(5),
        ..test_config()
    });
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, r) = (started.clone(), release.clone());
    server.add_handler(move |c: Client, p: Packet| {
        let (s, r) = (s.clone(), r.clone());
        async move {
            s.add_permits(1);
            r.notified().await;
            c.send(&p).await
        }
    });
    let running = serve(server).await;
    let addr = running.local_addr();
    let mut clients = Vec::new();
    for i in 0..10i64 {
        let mut client = RawClient::connect(addr).await;
        client
            .send(Encoding::Json, &map(&[("i", Value::from(i))]))
            .await;
        clients.push(client);
    }
    // Every request is inside its handler.
    let _all = started.acquire_many(10).await.unwrap();
    let handle = running.handle();
    handle.shutdown();
    let stopping = tokio::spawn(running.wait());
    // New connections are refused once the listener is gone.
    within_patience("new connections are refused", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    release.notify_waiters();
    for (i, client) in clients.iter_mut().enumerate() {
        let (_, reply) = client.read().await;
        assert_eq!(reply.get("i"), Some(&Value::from(i as i64)));
        client
            .expect_failure_then_close(ErrorCode::ShuttingDown, Encoding::Json)
            .await;
    }
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stops within the grace period")
        .unwrap()
        .unwrap();
    assert_eq!(handle.session_count(), 0);
}

#[tokio::test]
async fn the_grace_period_bounds_a_handler_that_never_finishes() {
    let mut server = Server::new(Config {
        grace_period: Duration::from_millis(200),
        ..test_config()
    });
    server.add_handler(|_c: Client, _p: Packet| std::future::pending::<()>());
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    client.send(Encoding::Json, &map(&[])).await;
    // Wait until the packet is inside the handler: the session exists.
    let handle = running.handle();
    wait_until("the session exists", || handle.session_count() > 0).await;
    let started = std::time::Instant::now();
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(5), running.wait())
        .await
        .expect("the server stops")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(handle.session_count(), 0);
    client.expect_closed().await;
}

#[tokio::test]
async fn typed_handlers_parse_requests_and_send_structs() {
    #[derive(serde::Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }
    #[derive(serde::Serialize)]
    struct Sum {
        sum: i64,
    }
    let mut server = Server::new(test_config());
    server.add_handler(|c: Client, p: Packet| async move {
        let add: Add = p.parse()?;
        c.send_value(&Sum { sum: add.a + add.b }).await?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    });
    let running = serve(server).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let request = map(&[("a", Value::from(2)), ("b", Value::from(40))]);
    let (encoding, reply) = client.request(Encoding::ZiProto, &request).await;
    assert_eq!(encoding, Encoding::ZiProto);
    assert_eq!(reply, map(&[("sum", Value::from(42))]));
    // A request that does not fit the type is the client's fault.
    client
        .send(Encoding::ZiProto, &map(&[("a", Value::from("two"))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::RequestMalformed, Encoding::ZiProto)
        .await;
}
