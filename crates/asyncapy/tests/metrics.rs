//! The Prometheus endpoint (`metrics_addr`, feature `metrics`), over real
//! sockets: what a scrape shows after a few sessions of echoes, failures and
//! refusals.

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::SocketAddr;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request to the endpoint: the status line and the body.
async fn http_get(addr: SocketAddr, method: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within_patience("the HTTP response", stream.read_to_string(&mut response))
        .await
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `series` (name and labels, as exposed), if shown.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_requests_sessions_bytes_and_refusals() {
    let mut server = Server::new(Config {
        session_limit: 1,
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..test_config()
    });
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(|_: &Client, p: &Packet| p.contains_key("echo"))
        .name("echo");
    let running = server.bind().await.unwrap();
    let metrics = running.metrics_addr().expect("metrics are served");
    assert_ne!(metrics.port(), 0);

    let mut client = RawClient::connect(running.local_addr()).await;
    for i in 0..5 {
        let packet = map(&[("echo", Value::from(i))]);
        let (_, reply) = client.request(Encoding::Json, &packet).await;
        assert_eq!(reply, packet);
    }
    // A second session of the same IP is over the limit.
    let mut refused = RawClient::connect(running.local_addr()).await;
    refused
        .expect_failure_then_close(ErrorCode::SessionLimitReached, Encoding::Json)
        .await;
    // While the first one is open, the gauge shows it.
    let (status, text) = http_get(metrics, "GET", "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    assert_eq!(sample(&text, "asyncapy_sessions"), Some(1.0), "{text}");
    // No handler takes this one: the session ends with ERR_NO_HANDLER.
    client
        .send(Encoding::Json, &map(&[("other", Value::from(1))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
    let handle = running.handle();
    wait_until("the session is over", || handle.session_count() == 0).await;

    let (_, text) = http_get(metrics, "GET", "/metrics").await;
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        value(r#"asyncapy_requests_total{handler="echo",outcome="ok"}"#),
        5.0
    );
    assert_eq!(
        value(r#"asyncapy_requests_total{handler="(none)",outcome="ERR_NO_HANDLER"}"#),
        1.0
    );
    assert_eq!(
        value(r#"asyncapy_refused_total{reason="session_limit"}"#),
        1.0
    );
    assert_eq!(value(r#"asyncapy_refused_total{reason="busy"}"#), 0.0);
    assert_eq!(value("asyncapy_connections_total"), 2.0);
    assert_eq!(value("asyncapy_sessions"), 0.0);
    assert_eq!(
        value(r#"asyncapy_request_duration_seconds_count{handler="echo"}"#),
        5.0
    );
    assert!(value(r#"asyncapy_request_duration_seconds_bucket{handler="echo",le="+Inf"}"#) == 5.0);
    assert!(
        value("asyncapy_bytes_received_total") > 5.0 * 16.0,
        "{text}"
    );
    assert!(value("asyncapy_bytes_sent_total") > 5.0 * 16.0, "{text}");
    for name in [
        "asyncapy_requests_total counter",
        "asyncapy_request_duration_seconds histogram",
        "asyncapy_sessions gauge",
        "asyncapy_refused_total counter",
    ] {
        assert!(text.contains(&format!("# TYPE {name}")), "{name}:\n{text}");
    }

    // Only GET /metrics is served.
    assert_eq!(
        http_get(metrics, "GET", "/").await.0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http_get(metrics, "POST", "/metrics").await.0,
        "HTTP/1.1 405 Method Not Allowed"
    );

    // The endpoint stops with the server.
    handle.shutdown();
    running.wait().await.unwrap();
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "still listening"
    );
}

#[tokio::test]
async fn without_metrics_addr_nothing_is_served() {
    let running = start_echo(test_config()).await;
    assert_eq!(running.metrics_addr(), None);
    running.handle().shutdown();
    running.wait().await.unwrap();
}
