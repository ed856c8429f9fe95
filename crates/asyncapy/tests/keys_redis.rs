//! `RedisKeyStore` against a real `redis-server` each test starts for itself:
//! the shared conformance suite, two connections sharing one key set,
//! prefixes, what Redis holds, a Redis that dies, comes back or never answers,
//! and two servers sharing one Redis behind the ApiKey filter.
//!
//! `redis-server` must be installed (`apt-get install redis-server`, or
//! `scripts/test-deps.sh`): without it these tests fail and say so.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;
mod key_stores;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::filters::ApiKey;
use asyncapy::keys::{key_digest, ApiKeyFactory, KeyError, KeyStore, KeyStoreError, RedisKeyStore};
use asyncapy::{Client, Packet, RunningServer, Server};
use common::{map, test_config, RawClient};
use key_stores::conformance::{conformance, shared_conformance};
use key_stores::redis_server::RedisServer;

/// The operation timeout of the stores under test.
const TIMEOUT: Duration = Duration::from_millis(500);

/// How long past [`TIMEOUT`] a failure may take to be reported.
const SLACK: Duration = Duration::from_millis(1500);

async fn store(redis: &RedisServer) -> RedisKeyStore {
    RedisKeyStore::builder(redis.url())
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_conforms() {
    let redis = RedisServer::start();
    conformance(Arc::new(store(&redis).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_conforms_as_a_trait_object_in_another_database() {
    let redis = RedisServer::start();
    let store: Arc<dyn KeyStore> = Arc::new(
        RedisKeyStore::builder(format!("{}/3", redis.url()))
            .prefix("other*[prefix]?:")
            .connect()
            .await
            .unwrap(),
    );
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_to_one_redis_share_their_keys() {
    let redis = RedisServer::start();
    let (a, b) = (store(&redis).await, store(&redis).await);
    shared_conformance(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test]
async fn prefixes_and_databases_keep_key_sets_apart() {
    let redis = RedisServer::start();
    let plain = ApiKeyFactory::with_store(store(&redis).await);
    let prefixed = ApiKeyFactory::with_store(
        RedisKeyStore::builder(redis.url())
            .prefix("tenant-b:")
            .connect()
            .await
            .unwrap(),
    );
    let db1 = ApiKeyFactory::with_store(
        RedisKeyStore::builder(format!("{}/1", redis.url()))
            .connect()
            .await
            .unwrap(),
    );
    let key = plain.issue("a").await.unwrap();
    assert!(!prefixed.contains(&key).await.unwrap());
    assert!(!db1.contains(&key).await.unwrap());
    assert!(prefixed.list().await.unwrap().is_empty());
    assert!(db1.list().await.unwrap().is_empty());
    assert_eq!(plain.list().await.unwrap().len(), 1);
    assert_eq!(plain.store().prefix(), RedisKeyStore::DEFAULT_PREFIX);
}

#[tokio::test]
async fn redis_holds_digests_and_json_never_keys() {
    let redis = RedisServer::start();
    let factory = ApiKeyFactory::with_store(store(&redis).await);
    let key = factory
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();
    let old = factory.issue(Value::bin(vec![1u8, 2])).await.unwrap();
    let new = factory.reissue(&old).await.unwrap();

    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut names: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    names.sort();
    let mut expected = vec![
        format!("asyncapy:keys:{}", key_digest(&key)),
        format!("asyncapy:keys:{}", key_digest(&new)),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let text: String = redis::cmd("GET").arg(&expected[0]).query(&mut raw).unwrap();
    let other: String = redis::cmd("GET").arg(&expected[1]).query(&mut raw).unwrap();
    let mut texts = [text, other];
    texts.sort();
    assert_eq!(texts, [r#"{"$bin": "0102"}"#, r#"{"user": "ada"}"#]);
    for name in &names {
        for secret in [&key, &old, &new] {
            assert!(!name.contains(secret.as_str()));
        }
    }
}

/// Polls `check` until it answers true, for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `result` is a store error that came within the timeout.
fn assert_prompt_failure<T: std::fmt::Debug>(result: Result<T, KeyError>, started: Instant) {
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(KeyError::Store(_))),
        "expected a store error, got {result:?}"
    );
    assert!(elapsed < TIMEOUT + SLACK, "the failure took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_is_an_error_not_a_hang_and_the_store_reconnects() {
    let mut redis = RedisServer::start();
    let factory = ApiKeyFactory::with_store(store(&redis).await);
    let key = factory.issue("before").await.unwrap();
    assert!(factory.contains(&key).await.unwrap());

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        assert_prompt_failure(factory.get(&key).await, started);
        let started = Instant::now();
        let contains = factory.contains(&key).await.map_err(KeyError::from);
        assert_prompt_failure(contains, started);
        let started = Instant::now();
        assert_prompt_failure(factory.issue(()).await, started);
        let started = Instant::now();
        assert_prompt_failure(factory.reissue(&key).await, started);
        let started = Instant::now();
        assert_prompt_failure(factory.list().await, started);
    }

    // Back (empty: the test's Redis keeps nothing on disk). The first
    // operation already works: the store reconnects on its own.
    redis.restart();
    let started = Instant::now();
    let key = factory.issue("after").await.unwrap();
    assert!(started.elapsed() < TIMEOUT + SLACK);
    assert_eq!(factory.get(&key).await.unwrap(), "after");
    let new = factory.reissue(&key).await.unwrap();
    factory.revoke(&new).await.unwrap();

    // And again, killed while idle.
    redis.stop();
    let started = Instant::now();
    assert_prompt_failure(factory.get(&key).await, started);
    redis.restart();
    eventually("a reconnect", || async { factory.issue(()).await.is_ok() }).await;
}

#[tokio::test]
async fn nothing_listening_fails_at_connect_and_a_lazy_store_connects_later() {
    let mut redis = RedisServer::start();
    redis.stop();
    let started = Instant::now();
    let err = RedisKeyStore::builder(redis.url())
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap_err();
    assert!(started.elapsed() < TIMEOUT + SLACK);
    assert!(err.to_string().contains(&redis.port().to_string()), "{err}");

    // A lazy store is made while Redis is down and works once it is up.
    let lazy = RedisKeyStore::builder(redis.url())
        .timeout(TIMEOUT)
        .connect_lazy()
        .unwrap();
    assert!(lazy.ping().await.is_err());
    redis.restart();
    eventually("a lazy connect", || async { lazy.ping().await.is_ok() }).await;
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out() {
    // Accepts connections and reads nothing: a stuck server, or a network
    // that drops replies.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("redis://{addr}");

    let started = Instant::now();
    let err = RedisKeyStore::builder(&url)
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeyStoreError::Timeout(t) if t == TIMEOUT),
        "{err}"
    );
    assert!(started.elapsed() < TIMEOUT + SLACK);

    let factory = ApiKeyFactory::with_store(
        RedisKeyStore::builder(&url)
            .timeout(TIMEOUT)
            .connect_lazy()
            .unwrap(),
    );
    for _ in 0..2 {
        let started = Instant::now();
        assert_prompt_failure(factory.issue(()).await, started);
    }

    // Through the filter: refused after the store's timeout, long before the
    // session's.
    let running = keyed_echo(factory).await;
    let started = Instant::now();
    expect_refused(running.local_addr(), "any-key").await;
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

/// An echo server behind the ApiKey filter on field `api_key`.
async fn keyed_echo<S: KeyStore>(factory: ApiKeyFactory<S>) -> RunningServer {
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(ApiKey::new(factory, "api_key"));
    server.bind().await.unwrap()
}

fn with_key(key: &str) -> Map {
    map(&[("api_key", Value::from(key))])
}

async fn expect_accepted(addr: SocketAddr, key: &str) {
    let mut client = RawClient::connect(addr).await;
    let packet = with_key(key);
    assert_eq!(client.request(Encoding::Json, &packet).await.1, packet);
}

async fn expect_refused(addr: SocketAddr, key: &str) {
    let mut client = RawClient::connect(addr).await;
    client.send(Encoding::Json, &with_key(key)).await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}

async fn is_accepted(addr: SocketAddr, key: &str) -> bool {
    let mut client = RawClient::connect(addr).await;
    let packet = with_key(key);
    client.request(Encoding::Json, &packet).await.1 == packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_one_redis_accept_the_same_key() {
    let redis = RedisServer::start();
    let one = keyed_echo(ApiKeyFactory::with_store(store(&redis).await)).await;
    let two = keyed_echo(ApiKeyFactory::with_store(store(&redis).await)).await;
    let admin = ApiKeyFactory::with_store(store(&redis).await);

    let key = admin
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();
    expect_accepted(one.local_addr(), &key).await;
    expect_accepted(two.local_addr(), &key).await;

    let new = admin.reissue(&key).await.unwrap();
    for server in [&one, &two] {
        expect_refused(server.local_addr(), &key).await;
        expect_accepted(server.local_addr(), &new).await;
    }
    admin.revoke(&new).await.unwrap();
    expect_refused(one.local_addr(), &new).await;
    expect_refused(two.local_addr(), &new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_refuses_promptly_while_redis_is_down_and_accepts_once_it_is_back() {
    let mut redis = RedisServer::start();
    let factory = ApiKeyFactory::with_store(store(&redis).await);
    let running = keyed_echo(factory.clone()).await;
    let addr = running.local_addr();
    let key = factory.issue("ada").await.unwrap();
    expect_accepted(addr, &key).await;

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        expect_refused(addr, &key).await;
        assert!(
            started.elapsed() < TIMEOUT + SLACK,
            "{:?}",
            started.elapsed()
        );
    }

    // Back, empty (no persistence in the test's Redis): the key is put back
    // as it was, and the same server accepts it again.
    redis.restart();
    eventually("Redis back", || async {
        factory
            .store()
            .insert(&key, Value::from("ada"))
            .await
            .is_ok()
    })
    .await;
    eventually("accepted again", || is_accepted(addr, &key)).await;
    expect_accepted(addr, &key).await;
}

#[tokio::test]
async fn without_a_timeout_set_a_silent_redis_fails_after_the_default_two_seconds() {
    assert_eq!(RedisKeyStore::DEFAULT_TIMEOUT, Duration::from_secs(2));
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("redis://{addr}");

    let started = Instant::now();
    let err = RedisKeyStore::builder(&url).connect().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, KeyStoreError::Timeout(t) if t == RedisKeyStore::DEFAULT_TIMEOUT),
        "{err}"
    );
    assert!(
        elapsed >= RedisKeyStore::DEFAULT_TIMEOUT
            && elapsed < RedisKeyStore::DEFAULT_TIMEOUT + SLACK,
        "connect failed after {elapsed:?}"
    );

    let lazy = RedisKeyStore::builder(&url).connect_lazy().unwrap();
    let started = Instant::now();
    let err = lazy.ping().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, KeyStoreError::Timeout(t) if t == RedisKeyStore::DEFAULT_TIMEOUT),
        "{err}"
    );
    assert!(
        elapsed >= RedisKeyStore::DEFAULT_TIMEOUT
            && elapsed < RedisKeyStore::DEFAULT_TIMEOUT + SLACK,
        "an operation failed after {elapsed:?}"
    );
}
