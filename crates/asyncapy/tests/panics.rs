//! A panicking handler ends only its own session: 1,000 of them in a row leave
//! the server serving and its session registry empty.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::time::Duration;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_panicking_requests_leave_the_server_intact() {
    // Keep the test output readable: silence only the deliberate panics.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("deliberate"));
        if !deliberate {
            default_hook(info);
        }
    }));

    let mut server = Server::new(Config {
        session_limit: 1,
        timeout: Duration::from_secs(5),
        ..test_config()
    });
    server.add_handler(|c: Client, p: Packet| async move {
        if p.contains_key("panic") {
            panic!("deliberate panic in a handler");
        }
        c.send(&p).await
    });
    let running = server.bind().await.expect("binds");
    let addr = running.local_addr();
    let boom = map(&[("panic", Value::from(true))]);
    for i in 0..1001 {
        // With session_limit = 1, a leaked session would lock this IP out.
        let mut client = RawClient::connect(addr).await;
        let encoding = if i % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::ZiProto
        };
        client.send(encoding, &boom).await;
        client
            .expect_failure_then_close(ErrorCode::HandlerFailed, encoding)
            .await;
    }
    assert_eq!(running.handle().session_count(), 0, "no session leaked");
    assert_still_serving(addr).await;
}
