//! `rate_limit = N/SECONDS` over real sockets: a burst of N per client IP,
//! then `ERR_RATE_LIMITED` for each packet over the rate, with the session
//! left open; other IPs are counted apart.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Config, RateLimit};
use common::*;

/// Pipelines `n` numbered packets and sorts the replies: (echoes, refusals).
async fn fire(client: &mut RawClient, encoding: Encoding, n: i64) -> (Vec<i64>, usize) {
    let mut frames = bytes::BytesMut::new();
    for i in 0..n {
        frames.extend_from_slice(&client.frame_bytes(encoding, &map(&[("n", Value::from(i))])));
    }
    client.send_raw(&frames).await;
    let (mut echoed, mut refused) = (Vec::new(), 0);
    for _ in 0..n {
        let (got, reply) = client.read().await;
        assert_eq!(got, encoding, "replies are in the session's encoding");
        match ErrorCode::from_map(&reply) {
            Some(ErrorCode::RateLimited) => refused += 1,
            Some(other) => panic!("unexpected {other}"),
            None => echoed.push(reply["n"].as_i64().unwrap()),
        }
    }
    (echoed, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_n_then_err_rate_limited_and_the_session_goes_on() {
    // 10 per 10 s: a burst of 10, then one packet a second, far slower than
    // this test's packets, so the counts below are exact.
    let running = start_echo(Config {
        rate_limit: Some("10/10".parse::<RateLimit>().unwrap()),
        ..test_config()
    })
    .await;
    let mut first = RawClient::connect(running.local_addr()).await;
    let (echoed, refused) = fire(&mut first, Encoding::ZiProto, 25).await;
    assert_eq!(
        echoed,
        (0..10).collect::<Vec<_>>(),
        "the first 10, in order"
    );
    assert_eq!(refused, 15);
    // The session is still open, and still over the rate.
    let (echoed, refused) = fire(&mut first, Encoding::ZiProto, 3).await;
    assert_eq!((echoed.len(), refused), (0, 3));
    // A second session of the same IP shares its budget...
    let mut second = RawClient::connect(running.local_addr()).await;
    assert_eq!(fire(&mut second, Encoding::Json, 2).await, (vec![], 2));
    // ...another IP has its own.
    let mut elsewhere =
        RawClient::connect_from(Ipv4Addr::new(127, 0, 0, 2), running.local_addr()).await;
    let (echoed, refused) = fire(&mut elsewhere, Encoding::Json, 12).await;
    assert_eq!((echoed.len(), refused), (10, 2));
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_refills_at_n_per_period() {
    // 5 per 0.5 s: one packet per 100 ms after the burst.
    let running = start_echo(Config {
        rate_limit: Some("5/0.5".parse().unwrap()),
        ..test_config()
    })
    .await;
    let mut client = RawClient::connect(running.local_addr()).await;
    let (echoed, _) = fire(&mut client, Encoding::Json, 8).await;
    assert_eq!(echoed.len(), 5);
    // The time the rate needs to give back one packet and a half.
    tokio::time::sleep(Duration::from_millis(150)).await;
    // One is back (two if this machine took 50 ms more than asked), not three.
    let (echoed, refused) = fire(&mut client, Encoding::Json, 3).await;
    assert!(
        (1..=2).contains(&echoed.len()) && refused >= 1,
        "{echoed:?}, {refused}"
    );
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[test]
fn rate_limit_is_an_option_with_a_checked_value() {
    let config = Config::from_ini_str("[AsyncAPY]\nrate_limit = 100/1\n").unwrap();
    assert_eq!(
        config.rate_limit,
        Some(RateLimit {
            count: 100,
            period: Duration::from_secs(1)
        })
    );
    let err = Config::from_ini_str("[AsyncAPY]\nrate_limit = 100\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rate_limit: invalid value \"100\""),
        "{err}"
    );
}
