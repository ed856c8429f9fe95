//! The built-in filters over real sockets: Fields, Ip (from several loopback
//! source addresses), ApiKey, and the combinators.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::filters::{ApiKey, Fields, FilterExt, Ip};
use asyncapy::keys::{ApiKeyFactory, KeyStore, KeyStoreError, MemoryKeyStore, Rename, StoreFuture};
use asyncapy::{Client, Config, Filter, Packet, RunningServer, Server};
use common::*;

const TWO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const THREE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn tagged(tag: &str) -> Map {
    map(&[("handled_by", Value::from(tag))])
}

/// A server with one handler, replying `tag`, behind `filter`.
async fn serve_filtered(filter: impl Filter, tag: &'static str) -> RunningServer {
    let mut server = Server::new(test_config());
    server
        .add_handler(move |c: Client, _p: Packet| async move { c.send(tagged(tag)).await })
        .filter(filter);
    server.bind().await.unwrap()
}

/// Sends `payload` and expects the `tag` reply.
async fn expect_handled(client: &mut RawClient, payload: &Map, tag: &str) {
    let (_, reply) = client.request(Encoding::Json, payload).await;
    assert_eq!(reply, tagged(tag), "reply to {payload:?}");
}

/// Sends `payload` and expects ERR_NO_HANDLER, then the close.
async fn expect_refused(client: &mut RawClient, payload: &Map) {
    client.send(Encoding::Json, payload).await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}

#[tokio::test]
async fn fields_answers_a_matching_packet_and_refuses_another_with_err_no_handler() {
    // Python: Filters.Fields(foo=r"\d+", bar=None)
    let fields = Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)]).unwrap();
    let running = serve_filtered(fields, "fields").await;
    let addr = running.local_addr();

    let mut client = RawClient::connect(addr).await;
    let good = map(&[
        ("foo", Value::from(12355)),
        ("bar", Value::from("anything")),
    ]);
    expect_handled(&mut client, &good, "fields").await;
    let also_good = map(&[("foo", Value::from("42")), ("bar", Value::Null)]);
    expect_handled(&mut client, &also_good, "fields").await;
    // The prefix hole of the original's re.match is closed.
    let prefix_only = map(&[("foo", Value::from("12abc")), ("bar", Value::from(1))]);
    expect_refused(&mut client, &prefix_only).await;

    // ZiProto payloads are matched the same way.
    let mut zi = RawClient::connect(addr).await;
    let (encoding, reply) = zi.request(Encoding::ZiProto, &good).await;
    assert_eq!((encoding, reply), (Encoding::ZiProto, tagged("fields")));
    zi.send(Encoding::ZiProto, &map(&[("foo", Value::from(1))]))
        .await;
    zi.expect_failure_then_close(ErrorCode::NoHandler, Encoding::ZiProto)
        .await;
}

#[tokio::test]
async fn strict_fields_need_exactly_the_named_keys_non_strict_allow_more() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("strict")).await })
        .filter(Fields::new().field("id"));
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("non-strict")).await })
        .filter(Fields::new().field("id").strict(false));
    let running = server.bind().await.unwrap();

    let mut client = RawClient::connect(running.local_addr()).await;
    expect_handled(&mut client, &map(&[("id", Value::from(1))]), "strict").await;
    let extra = map(&[("id", Value::from(1)), ("extra", Value::from(true))]);
    expect_handled(&mut client, &extra, "non-strict").await;
    expect_refused(&mut client, &map(&[("extra", Value::from(true))])).await;
}

#[tokio::test]
async fn ip_passes_only_the_allowed_peer_address() {
    let running = serve_filtered(Ip::new(["127.0.0.2"]).unwrap(), "ip").await;
    let addr = running.local_addr();
    let ping = map(&[("ping", Value::from(1))]);

    let mut allowed = RawClient::connect_from(TWO, addr).await;
    expect_handled(&mut allowed, &ping, "ip").await;
    let mut other = RawClient::connect_from(THREE, addr).await;
    expect_refused(&mut other, &ping).await;
    // The server's own address (127.0.0.1, what the original compared) does not pass.
    let mut local = RawClient::connect(addr).await;
    expect_refused(&mut local, &ping).await;
}

#[tokio::test]
async fn ip_ranges_and_lists_pass_any_of_their_entries() {
    let running = serve_filtered(Ip::new(["127.0.0.3", "127.0.0.0/31"]).unwrap(), "ip").await;
    let addr = running.local_addr();
    let ping = map(&[]);
    expect_handled(&mut RawClient::connect(addr).await, &ping, "ip").await;
    expect_handled(&mut RawClient::connect_from(THREE, addr).await, &ping, "ip").await;
    expect_refused(&mut RawClient::connect_from(TWO, addr).await, &ping).await;
}

#[tokio::test]
async fn ip_changes_through_its_handle_apply_to_the_next_packet() {
    let ip = Ip::new(["127.0.0.2"]).unwrap();
    let handle = ip.handle();
    let running = serve_filtered(ip, "ip").await;
    let addr = running.local_addr();
    let ping = map(&[]);

    let mut three = RawClient::connect_from(THREE, addr).await;
    expect_refused(&mut three, &ping).await;

    assert!(handle.add("127.0.0.3").unwrap());
    let mut three = RawClient::connect_from(THREE, addr).await;
    expect_handled(&mut three, &ping, "ip").await;

    // An open session is checked again on its next packet.
    let mut two = RawClient::connect_from(TWO, addr).await;
    expect_handled(&mut two, &ping, "ip").await;
    assert!(handle.remove("127.0.0.2").unwrap());
    expect_refused(&mut two, &ping).await;
    expect_handled(&mut three, &ping, "ip").await;

    handle.replace(["127.0.0.0/8"]).unwrap();
    expect_handled(&mut RawClient::connect_from(TWO, addr).await, &ping, "ip").await;
    expect_handled(&mut RawClient::connect(addr).await, &ping, "ip").await;

    handle.clear();
    expect_refused(&mut three, &ping).await;
}

#[tokio::test]
async fn ip_filters_see_ipv6_peers() {
    let config = Config {
        addr: "::1".to_owned(),
        ..test_config()
    };
    let mut server = Server::new(config);
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("v4")).await })
        .filter(Ip::new(["127.0.0.1"]).unwrap());
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("v6")).await })
        .filter(Ip::new(["::1"]).unwrap());
    // The test machines have ::1; a machine without it fails here, saying so,
    // rather than passing on a test that did not run.
    let running = server
        .bind()
        .await
        .unwrap_or_else(|e| panic!("binding ::1 failed (no IPv6 loopback here?): {e}"));
    let mut client = RawClient::connect(running.local_addr()).await;
    expect_handled(&mut client, &map(&[]), "v6").await;
}

#[tokio::test]
async fn api_key_accepts_live_keys_only_while_the_server_runs() {
    let factory = ApiKeyFactory::new();
    let key = factory
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();

    let mut server = Server::new(test_config());
    let keys = factory.clone();
    server
        .add_handler(move |c: Client, p: Packet| {
            let keys = keys.clone();
            async move {
                // The filter let the packet through: its key is live.
                let key = p["api_key"].as_str().unwrap_or_default();
                let metadata = keys.get(key).await?;
                c.send(map(&[("user", metadata["user"].clone())])).await?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .filter(ApiKey::new(factory.clone(), "api_key"));
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let with_key = |key: &str| map(&[("api_key", Value::from(key))]);
    let ada = map(&[("user", Value::from("ada"))]);

    let mut client = RawClient::connect(addr).await;
    assert_eq!(client.request(Encoding::Json, &with_key(&key)).await.1, ada);
    expect_refused(&mut client, &with_key("not-a-key")).await;
    for refused in [
        map(&[]),
        map(&[("api_key", Value::from(vec![key.as_str()]))]),
        map(&[("API_KEY", Value::from(key.as_str()))]),
    ] {
        expect_refused(&mut RawClient::connect(addr).await, &refused).await;
    }

    // Reissue: the new key works at once, the old one no longer does.
    let new_key = factory.reissue(&key).await.unwrap();
    let mut client = RawClient::connect(addr).await;
    assert_eq!(
        client.request(Encoding::Json, &with_key(&new_key)).await.1,
        ada
    );
    expect_refused(&mut client, &with_key(&key)).await;

    // Revoke: refused from the next packet, in a session that was accepted.
    let mut client = RawClient::connect(addr).await;
    assert_eq!(
        client.request(Encoding::Json, &with_key(&new_key)).await.1,
        ada
    );
    factory.revoke(&new_key).await.unwrap();
    expect_refused(&mut client, &with_key(&new_key)).await;

    // The server goes on: a key issued now is served.
    let later = factory
        .issue(Map::from_iter([("user", "bob")]))
        .await
        .unwrap();
    let mut client = RawClient::connect(addr).await;
    assert_eq!(
        client.request(Encoding::Json, &with_key(&later)).await.1,
        map(&[("user", Value::from("bob"))])
    );
}

/// A key store that must be awaited (so the filter answers `Check::Later`)
/// and that can be taken down.
#[derive(Default)]
struct RemoteStore {
    keys: MemoryKeyStore,
    down: AtomicBool,
}

impl RemoteStore {
    fn call<'a, T: Send + 'a>(&'a self, inner: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            if self.down.load(Ordering::SeqCst) {
                return Err(KeyStoreError::backend("connection refused"));
            }
            inner.await
        })
    }
}

impl KeyStore for RemoteStore {
    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        self.call(self.keys.insert(key, metadata))
    }
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        self.call(self.keys.get(key))
    }
    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        self.call(self.keys.contains(key))
    }
    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        self.call(self.keys.update(key, metadata))
    }
    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        self.call(self.keys.remove(key))
    }
    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
        self.call(self.keys.rename(old, new))
    }
}

#[tokio::test]
async fn api_key_over_an_async_store_and_a_store_failure_refuses_without_harm() {
    let factory = ApiKeyFactory::with_store(RemoteStore::default());
    let key = factory.issue(()).await.unwrap();
    let running = serve_filtered(ApiKey::new(factory.clone(), "key"), "keyed").await;
    let addr = running.local_addr();
    let with_key = map(&[("key", Value::from(key.as_str()))]);

    let mut client = RawClient::connect(addr).await;
    expect_handled(&mut client, &with_key, "keyed").await;

    factory.store().down.store(true, Ordering::SeqCst);
    expect_refused(&mut client, &with_key).await;

    factory.store().down.store(false, Ordering::SeqCst);
    expect_handled(&mut RawClient::connect(addr).await, &with_key, "keyed").await;
}

#[tokio::test]
async fn combinators_over_real_peers() {
    let factory = ApiKeyFactory::new();
    let key = factory.issue(()).await.unwrap();
    let from_two = || Ip::new(["127.0.0.2"]).unwrap();

    let mut server = Server::new(test_config());
    // Trusted: from 127.0.0.2 or with a key, and a read or write operation.
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("trusted")).await })
        .filter(
            from_two().or(ApiKey::new(factory.clone(), "key")).and(
                Fields::new()
                    .matching("op", "read|write")
                    .unwrap()
                    .strict(false),
            ),
        );
    // Public: any operation, but never from 127.0.0.2.
    server
        .add_handler(|c: Client, _p: Packet| async move { c.send(tagged("public")).await })
        .filter(
            Fields::new()
                .field("op")
                .strict(false)
                .and(from_two().not()),
        );
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let op = |op: &str| map(&[("op", Value::from(op))]);
    let keyed = |op: &str| map(&[("op", Value::from(op)), ("key", Value::from(key.as_str()))]);

    let mut two = RawClient::connect_from(TWO, addr).await;
    expect_handled(&mut two, &op("read"), "trusted").await;
    expect_refused(&mut two, &op("delete")).await;

    let mut three = RawClient::connect_from(THREE, addr).await;
    expect_handled(&mut three, &op("read"), "public").await;
    expect_handled(&mut three, &keyed("write"), "trusted").await;
    expect_handled(&mut three, &keyed("delete"), "public").await;
    expect_handled(&mut three, &keyed("readwrite"), "public").await;
    expect_refused(&mut three, &map(&[("key", Value::from(key.as_str()))])).await;
}

/// The peer address a handler sees is the one the filter checks.
#[tokio::test]
async fn the_filter_and_the_handler_see_the_same_peer() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, _p: Packet| async move {
            c.send(map(&[("ip", Value::from(c.ip().to_string()))]))
                .await
        })
        .filter(Ip::new(["127.0.0.3"]).unwrap());
    let running = server.bind().await.unwrap();
    let addr: SocketAddr = running.local_addr();
    let mut client = RawClient::connect_from(THREE, addr).await;
    let (_, reply) = client.request(Encoding::Json, &map(&[])).await;
    assert_eq!(reply["ip"], "127.0.0.3");
}
