//! The PROXY protocol over real sockets: versions 1 and 2, the header alone or
//! with the client's first frame in the same write, or a byte at a time; the
//! client it names is what handlers, the `Ip` filter and the per-IP session
//! limit see; headers that are missing, malformed, stalled or from an
//! untrusted source close the connection unanswered while the server serves on.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::client::{AsyncClient, BlockingClient, ClientConfig};
use asyncapy::filters::{Ip, IpNet};
use asyncapy::proxy::{ProxyHeader, Version, MAX_V1_LEN, V2_SIGNATURE};
use asyncapy::{Client, Config, Packet, RunningServer, SendError, Server};
use common::*;
use tokio::io::AsyncWriteExt;

/// Replies with the address the session sees.
async fn whoami(client: Client, _packet: Packet) -> Result<(), SendError> {
    let mut reply = Map::new();
    reply.insert("peer", Value::from(client.peer_addr().to_string()));
    client.send(&reply).await
}

fn proxied_config() -> Config {
    Config {
        proxy_protocol: true,
        ..test_config()
    }
}

async fn start_whoami(config: Config) -> RunningServer {
    let mut server = Server::new(config);
    server.register_handler(whoami);
    server.bind().await.unwrap()
}

fn header(source: &str, version: Version) -> ProxyHeader {
    ProxyHeader::proxied(source.parse().unwrap(), "192.0.2.1:1500".parse().unwrap())
        .version(version)
}

fn ping() -> Map {
    map(&[("ping", Value::from(1))])
}

/// Sends `header`, then a request, in one write; returns the peer the server saw.
async fn peer_seen(client: &mut RawClient, header: &ProxyHeader) -> String {
    let mut bytes = header.to_bytes();
    bytes.extend_from_slice(&client.frame_bytes(Encoding::Json, &ping()));
    client.send_raw(&bytes).await;
    let (_, reply) = client.read().await;
    reply["peer"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn v1_and_v2_headers_name_the_client_with_the_first_frame_in_the_same_write() {
    let running = start_whoami(proxied_config()).await;
    let addr = running.local_addr();
    for (source, version) in [
        ("203.0.113.7:51234", Version::V1),
        ("203.0.113.8:1", Version::V2),
        ("[2001:db8::7]:40000", Version::V1),
        ("[2001:db8::8]:65535", Version::V2),
    ] {
        let mut client = RawClient::connect(addr).await;
        let seen = peer_seen(&mut client, &header(source, version)).await;
        assert_eq!(seen.parse::<SocketAddr>().unwrap(), source.parse().unwrap());
        // Later packets of the session: the same client, no second header.
        let (_, again) = client.request(Encoding::ZiProto, &ping()).await;
        assert_eq!(again["peer"].as_str(), Some(seen.as_str()));
    }
}

#[tokio::test]
async fn a_header_trickled_a_byte_at_a_time_works_too() {
    let running = start_whoami(proxied_config()).await;
    for version in [Version::V1, Version::V2] {
        let mut client = RawClient::connect(running.local_addr()).await;
        for byte in header("198.51.100.4:4444", version).to_bytes() {
            client.send_raw(&[byte]).await;
            client.stream.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        let (_, reply) = client.request(Encoding::Json, &ping()).await;
        assert_eq!(reply["peer"].as_str(), Some("198.51.100.4:4444"));
    }
}

#[tokio::test]
async fn local_and_unknown_headers_keep_the_connection_address() {
    let running = start_whoami(proxied_config()).await;
    let mut tlv = V2_SIGNATURE.to_vec();
    // PROXY over UNIX sockets (an address the protocol cannot name as IP).
    tlv.extend_from_slice(&[0x21, 0x31, 0, 216]);
    tlv.extend_from_slice(&[0; 216]);
    let v2_unix = tlv;
    for bytes in [
        ProxyHeader::local().version(Version::V1).to_bytes(),
        ProxyHeader::local().version(Version::V2).to_bytes(),
        b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        v2_unix,
    ] {
        let mut client = RawClient::connect(running.local_addr()).await;
        let local = client.stream.local_addr().unwrap();
        client.send_raw(&bytes).await;
        let (_, reply) = client.request(Encoding::Json, &ping()).await;
        assert_eq!(reply["peer"].as_str(), Some(local.to_string().as_str()));
    }
}

#[tokio::test]
async fn connections_without_a_valid_header_are_closed_unanswered() {
    let running = start_whoami(proxied_config()).await;
    let addr = running.local_addr();
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(MAX_V1_LEN + 1, b'x');
    let mut bad_v2 = V2_SIGNATURE.to_vec();
    bad_v2.extend_from_slice(&[0x31, 0x11, 0, 12]);
    let mut huge_v2 = V2_SIGNATURE.to_vec();
    huge_v2.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    let plain_frame = RawClient::connect(addr)
        .await
        .frame_bytes(Encoding::Json, &ping())
        .to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a plain frame", plain_frame),
        (
            "a bad address",
            b"PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n".to_vec(),
        ),
        (
            "a bad port",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 99999\r\n".to_vec(),
        ),
        ("no CRLF within 107 bytes", long),
        ("v2 version 3", bad_v2),
        ("v2 longer than the maximum", huge_v2),
        ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let mut client = RawClient::connect(addr).await;
        client.send_raw(&bytes).await;
        // Closed without a byte of reply (read_frame asserts nothing was buffered).
        assert!(client.read_frame().await.is_none(), "{what}");
    }
    // The server serves on, and every refused connection is gone.
    let mut client = RawClient::connect(addr).await;
    let seen = peer_seen(&mut client, &header("203.0.113.9:9", Version::V2)).await;
    assert_eq!(seen, "203.0.113.9:9");
    drop(client);
    let handle = running.handle();
    let deadline = Instant::now() + PATIENCE;
    while handle.connection_count() > 0 {
        assert!(Instant::now() < deadline, "connections left open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_stalled_header_is_cut_at_the_timeout() {
    let running = start_whoami(Config {
        timeout: Duration::from_millis(400),
        ..proxied_config()
    })
    .await;
    let started = Instant::now();
    let mut stalled = RawClient::connect(running.local_addr()).await;
    stalled.send_raw(b"PROXY TCP4 203.0.113.1 ").await;
    let mut silent = RawClient::connect(running.local_addr()).await;
    assert!(stalled.read_frame().await.is_none());
    assert!(silent.read_frame().await.is_none());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(350), "cut after {waited:?}");
    assert!(waited < Duration::from_secs(5), "cut after {waited:?}");
}

#[tokio::test]
async fn the_ip_filter_sees_the_client_the_header_names() {
    let mut server = Server::new(proxied_config());
    server
        .add_handler(whoami)
        .filter(Ip::new(["203.0.113.0/24"]).unwrap());
    let running = server.bind().await.unwrap();
    let mut inside = RawClient::connect(running.local_addr()).await;
    assert_eq!(
        peer_seen(&mut inside, &header("203.0.113.50:5", Version::V1)).await,
        "203.0.113.50:5"
    );
    // The socket's own address (127.0.0.1) would not pass either: the header decides.
    let mut outside = RawClient::connect(running.local_addr()).await;
    let mut bytes = header("198.51.100.50:5", Version::V1).to_bytes();
    bytes.extend_from_slice(&outside.frame_bytes(Encoding::Json, &ping()));
    outside.send_raw(&bytes).await;
    outside
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}

#[tokio::test]
async fn the_session_limit_counts_the_clients_not_the_proxy() {
    let running = start_whoami(Config {
        session_limit: 1,
        ..proxied_config()
    })
    .await;
    let addr = running.local_addr();
    // Two clients through one proxy address: each gets its session.
    let mut a = RawClient::connect(addr).await;
    let mut b = RawClient::connect(addr).await;
    assert_eq!(
        peer_seen(&mut a, &header("203.0.113.1:1", Version::V2)).await,
        "203.0.113.1:1"
    );
    assert_eq!(
        peer_seen(&mut b, &header("203.0.113.2:1", Version::V2)).await,
        "203.0.113.2:1"
    );
    // A second session for a client that has one is refused.
    let mut a2 = RawClient::connect(addr).await;
    a2.send_raw(&header("203.0.113.1:2", Version::V1).to_bytes())
        .await;
    a2.expect_failure_then_close(ErrorCode::SessionLimitReached, Encoding::Json)
        .await;
}

#[tokio::test]
async fn only_trusted_proxies_may_connect() {
    let untrusted = start_whoami(Config {
        proxy_trusted: vec!["10.0.0.0/8".parse().unwrap()],
        ..proxied_config()
    })
    .await;
    let mut client = RawClient::connect(untrusted.local_addr()).await;
    client
        .send_raw(&header("203.0.113.1:1", Version::V1).to_bytes())
        .await;
    assert!(client.read_frame().await.is_none(), "closed unread");

    let trusted = start_whoami(Config {
        proxy_trusted: vec![
            "10.0.0.0/8".parse().unwrap(),
            IpNet::from(std::net::Ipv4Addr::LOCALHOST),
        ],
        ..proxied_config()
    })
    .await;
    let mut client = RawClient::connect(trusted.local_addr()).await;
    assert_eq!(
        peer_seen(&mut client, &header("203.0.113.1:1", Version::V1)).await,
        "203.0.113.1:1"
    );
}

#[tokio::test]
async fn both_clients_can_send_a_header_themselves() {
    let running = start_whoami(proxied_config()).await;
    let port = running.local_addr().port();
    let config = ClientConfig::new()
        .timeout(PATIENCE)
        .proxy_header(header("[2001:db8::42]:4242", Version::V2));
    let mut client = AsyncClient::connect_to("127.0.0.1", port, config.clone())
        .await
        .unwrap();
    let reply = client.request(&ping()).await.unwrap();
    assert_eq!(reply["peer"].as_str(), Some("[2001:db8::42]:4242"));

    let reply = tokio::task::spawn_blocking(move || {
        let mut client = BlockingClient::connect_to("127.0.0.1", port, config).unwrap();
        client.request(ping()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(reply["peer"].as_str(), Some("[2001:db8::42]:4242"));
}

#[test]
fn the_configuration_reads_and_checks_the_proxy_keys() {
    let config = Config::from_ini_str(
        "[AsyncAPY]\nproxy_protocol = yes\nproxy_trusted = 10.0.0.0/8, ::1 192.168.1.1\n",
    )
    .unwrap();
    assert!(config.proxy_protocol);
    assert_eq!(
        config.proxy_trusted,
        vec![
            "10.0.0.0/8".parse::<IpNet>().unwrap(),
            "::1".parse().unwrap(),
            "192.168.1.1".parse().unwrap()
        ]
    );
    let err = Config::from_ini_str("[AsyncAPY]\nproxy_protocol = maybe\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "proxy_protocol: invalid value \"maybe\": must be true or false (yes/no, on/off, 1/0)"
    );
    let err =
        Config::from_ini_str("[AsyncAPY]\nproxy_protocol = on\nproxy_trusted = 10.0.0.0/33\n")
            .unwrap_err();
    assert!(
        err.to_string().starts_with("proxy_trusted: invalid value"),
        "{err}"
    );
    let err = Config::from_ini_str("[AsyncAPY]\nproxy_trusted = 10.0.0.1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "proxy_trusted: invalid value \"10.0.0.1\": is only used with proxy_protocol = true"
    );
}
