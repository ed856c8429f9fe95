//! Sends are delivered when made, over real sockets: a push to another
//! (idle) session, a handler's first send before it awaits something slow,
//! sends from another thread; and the outbox's bound: a peer that never reads
//! holds up neither memory nor a handler broadcasting to everyone.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::*;

/// A handler's `Client` can go anywhere: to other tasks and threads.
#[test]
fn a_client_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<asyncapy::Session>();
    // One pointer: a clone is a reference count.
    assert_eq!(std::mem::size_of::<Client>(), std::mem::size_of::<usize>());
}

/// "At once": well under the 400 ms a handler waits in these tests.
const AT_ONCE: Duration = Duration::from_millis(100);

/// Written with the seed's names only: `get_sessions`, `Session::client`,
/// `Client::send`.
#[tokio::test]
async fn a_push_to_an_idle_session_arrives_at_once() {
    let mut server = Server::builder().port(0).build().unwrap();
    server.add_handler(|client: Client, packet: Packet| async move {
        if packet.contains_key("push") {
            for session in client.get_sessions() {
                if session != client.session() {
                    session.client().send(&packet).await?;
                }
            }
        }
        client.send(map(&[("pushed", Value::from(true))])).await
    });
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let mut idle = RawClient::connect(addr).await;
    // The idle session's encoding is set by its first packet; then it rests.
    idle.request(Encoding::Json, &map(&[])).await;
    let mut pusher = RawClient::connect(addr).await;
    let push = map(&[("push", Value::from("news"))]);
    let sent = Instant::now();
    pusher.request(Encoding::Json, &push).await;
    let (encoding, got) = idle.read().await;
    let took = sent.elapsed();
    assert_eq!(got, push);
    assert_eq!(encoding, Encoding::Json);
    assert!(took < AT_ONCE, "the push took {took:?}");
}

#[tokio::test]
async fn a_send_before_a_slow_await_arrives_before_the_await_ends() {
    let mut server = Server::builder().port(0).build().unwrap();
    server.add_handler(|client: Client, _packet: Packet| async move {
        client.send(map(&[("step", Value::from(1))])).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.send(map(&[("step", Value::from(2))])).await
    });
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let sent = Instant::now();
    client.send(Encoding::ZiProto, &map(&[])).await;
    let (_, first) = client.read().await;
    let first_after = sent.elapsed();
    assert_eq!(first, map(&[("step", Value::from(1))]));
    assert!(first_after < AT_ONCE, "the first send took {first_after:?}");
    let (_, second) = client.read().await;
    assert_eq!(second, map(&[("step", Value::from(2))]));
    assert!(sent.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_from_another_thread_are_delivered_at_once() {
    // The handler hands its client to a plain thread (no runtime there),
    // which sends with try_send; the handler returns at once.
    let handles: Arc<Mutex<Vec<Client>>> = Arc::default();
    let kept = handles.clone();
    let mut server = Server::new(test_config());
    server.add_handler(move |client: Client, _packet: Packet| {
        kept.lock().unwrap().push(client);
        async {}
    });
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    client.send(Encoding::Json, &map(&[])).await;
    wait_until("the handler kept its client", || {
        !handles.lock().unwrap().is_empty()
    })
    .await;
    let handle = handles.lock().unwrap()[0].clone();
    let sent = Instant::now();
    std::thread::spawn(move || {
        for i in 0..3i64 {
            handle
                .try_send(map(&[("from_thread", Value::from(i))]))
                .unwrap();
        }
    })
    .join()
    .unwrap();
    for i in 0..3i64 {
        let (_, got) = client.read().await;
        assert_eq!(got, map(&[("from_thread", Value::from(i))]));
    }
    assert!(sent.elapsed() < AT_ONCE, "took {:?}", sent.elapsed());
}

/// A server whose handler, on `{"flood": n}`, sends n packets of 64 KiB to
/// its own client and reports how its sends went.
async fn flooding_server(config: Config) -> asyncapy::RunningServer {
    let mut server = Server::new(config);
    server.add_handler(|client: Client, packet: Packet| async move {
        let Some(n) = packet.get("flood").and_then(Value::as_i64) else {
            return client.send(&packet).await;
        };
        let chunk = map(&[("blob", Value::Bin(vec![7; 64 << 10]))]);
        for _ in 0..n {
            client.send(&chunk).await?;
        }
        Ok(())
    });
    server.bind().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_makes_send_wait_and_a_reader_gets_everything() {
    let running = flooding_server(Config {
        max_outbox: 256 << 10,
        ..test_config()
    })
    .await;
    let mut client = RawClient::connect_small_window(running.local_addr()).await;
    // 32 MiB through a 256 KiB outbox: every packet arrives, in order, to a
    // client that reads.
    client
        .send(Encoding::ZiProto, &map(&[("flood", Value::from(512))]))
        .await;
    for _ in 0..512 {
        let (_, got) = client.read().await;
        assert_eq!(
            got.get("blob").map(|b| b.as_bin().map(<[u8]>::len)),
            Some(Some(64 << 10))
        );
    }
    // The session goes on.
    let ping = map(&[("ping", Value::from(1))]);
    assert_eq!(client.request(Encoding::ZiProto, &ping).await.1, ping);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_and_memory_stays_bounded() {
    let timeout = Duration::from_millis(500);
    let running = flooding_server(Config {
        max_outbox: 256 << 10,
        timeout,
        ..test_config()
    })
    .await;
    let handle = running.handle();
    let mut stuck = RawClient::connect_small_window(running.local_addr()).await;
    // 1 GiB asked for: with a bounded outbox the handler waits for room, and
    // the session is cut once its peer has read nothing for the timeout.
    let sent = Instant::now();
    stuck
        .send(Encoding::ZiProto, &map(&[("flood", Value::from(16 << 10))]))
        .await;
    wait_until("the session exists", || handle.session_count() == 1).await;
    assert_still_serving(running.local_addr()).await;
    wait_until("the stuck session is cut", || handle.session_count() == 0).await;
    let took = sent.elapsed();
    // Cut once its peer has read nothing for the timeout.
    assert!(
        took < timeout + Duration::from_millis(500),
        "cut after {took:?}"
    );
    let rss = resident_set_bytes() / 1024;
    assert!(
        rss < 200 << 10,
        "resident set {rss} KiB after a 1 GiB flood"
    );
    assert_still_serving(running.local_addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_not_held_up_past_the_timeout_by_one_slow_reader() {
    let timeout = Duration::from_millis(500);
    let mut server = Server::new(Config {
        max_outbox: 128 << 10,
        timeout,
        ..test_config()
    });
    // On {"broadcast"}, a task (outside any handler, so that no handler
    // deadline is involved) sends 16 MiB (more than the socket buffers of
    // both ends hold) to every other session of the IP, then reports to the
    // test how many sessions took it all, and how long it took.
    let (report_tx, report_rx) = tokio::sync::oneshot::channel::<(usize, Duration)>();
    let report_tx = Arc::new(Mutex::new(Some(report_tx)));
    server.add_handler(move |client: Client, packet: Packet| {
        let report_tx = report_tx.clone();
        async move {
            if !packet.contains_key("broadcast") {
                return client.send(&packet).await;
            }
            tokio::spawn(async move {
                let started = Instant::now();
                let chunk = map(&[("blob", Value::Bin(vec![1; 64 << 10]))]);
                let mut delivered = 0;
                for session in client.get_sessions() {
                    if session == client.session() {
                        continue;
                    }
                    let target = session.client();
                    let mut all = true;
                    for _ in 0..256 {
                        if target.send(&chunk).await.is_err() {
                            all = false;
                            break;
                        }
                    }
                    delivered += usize::from(all);
                }
                if let Some(tx) = report_tx.lock().unwrap().take() {
                    let _ = tx.send((delivered, started.elapsed()));
                }
            });
            Ok(())
        }
    });
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    // One session that drains everything (the oldest: served first), and
    // one that never reads.
    let mut reader = RawClient::connect_small_window(addr).await;
    reader.request(Encoding::ZiProto, &map(&[])).await;
    let mut slow = RawClient::connect_small_window(addr).await;
    slow.request(Encoding::ZiProto, &map(&[])).await;
    let draining = tokio::spawn(async move {
        for _ in 0..256 {
            reader.read().await;
        }
    });
    let mut broadcaster = RawClient::connect(addr).await;
    broadcaster
        .send(Encoding::ZiProto, &map(&[("broadcast", Value::Null)]))
        .await;
    let (delivered, took) = within_patience("the broadcast's report", report_rx)
        .await
        .unwrap();
    draining.await.unwrap();
    assert_eq!(delivered, 1, "the reader took it all, the slow one did not");
    assert!(
        took < timeout + Duration::from_millis(500),
        "the broadcast was held up {took:?} (timeout {timeout:?})"
    );
    drop(slow);
}
