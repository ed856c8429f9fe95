//! `SqliteKeyStore`: the shared conformance suite on a file and in memory, two
//! handles on one file (two processes), restarts, what the file holds, and
//! the ApiKey filter over it in a running server.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;
mod key_stores;

use std::path::Path;
use std::sync::Arc;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::filters::ApiKey;
use asyncapy::keys::{key_digest, ApiKeyFactory, KeyStore, SqliteKeyStore};
use asyncapy::{Client, Packet, Server};
use common::{map, test_config, RawClient};
use key_stores::conformance::{conformance, metadata_samples, shared_conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).unwrap());
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_store_conforms_as_a_trait_object() {
    let store: Arc<dyn KeyStore> = Arc::new(SqliteKeyStore::open_in_memory().unwrap());
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_see_each_other_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let a = Arc::new(SqliteKeyStore::open(&path).unwrap());
    let b = Arc::new(SqliteKeyStore::open(&path).unwrap());
    shared_conformance(a, b).await;
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let factory = ApiKeyFactory::with_store(SqliteKeyStore::open(&path).unwrap());
    let kept = factory
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();
    let revoked = factory.issue(()).await.unwrap();
    factory.revoke(&revoked).await.unwrap();
    let samples: Vec<(String, Value)> = {
        let mut out = Vec::new();
        for metadata in metadata_samples() {
            out.push((factory.issue(metadata.clone()).await.unwrap(), metadata));
        }
        out
    };
    drop(factory);

    let factory = ApiKeyFactory::with_store(SqliteKeyStore::open(&path).unwrap());
    assert_eq!(factory.get(&kept).await.unwrap()["user"], "ada");
    assert!(factory.contains(&kept).await.unwrap());
    assert!(
        !factory.contains(&revoked).await.unwrap(),
        "a revocation persists"
    );
    for (key, metadata) in samples {
        assert_eq!(factory.get(&key).await.unwrap(), metadata);
    }
    // And it goes on working: reissue after the restart.
    let new = factory.reissue(&kept).await.unwrap();
    assert_eq!(factory.get(&new).await.unwrap()["user"], "ada");
}

/// Every byte SQLite wrote for the store: the database and its WAL, if any.
fn file_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_file_holds_digests_and_json_never_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).unwrap());
    let factory = ApiKeyFactory::from_arc(Arc::clone(&store));
    let key = factory
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();
    let other = factory.issue(()).await.unwrap();
    let reissued = factory.reissue(&other).await.unwrap();

    let digest: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&key_digest(&key)[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let check = |when: &str| {
        let bytes = file_bytes(dir.path());
        for secret in [&key, &other, &reissued] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "a key in clear ({when})"
            );
        }
        assert!(contains(&bytes, &digest), "the digest is stored ({when})");
        assert!(
            contains(&bytes, br#"{"user": "ada"}"#),
            "metadata as JSON ({when})"
        );
    };
    check("open: database and WAL");
    drop((factory, store));
    check("closed");
}

#[tokio::test]
async fn the_api_key_filter_sees_issues_and_revocations_of_another_handle_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    // The server's handle, and an administrator's (another process, as
    // `asyncapy keys` would be).
    let served = ApiKeyFactory::with_store(SqliteKeyStore::open(&path).unwrap());
    let admin = ApiKeyFactory::with_store(SqliteKeyStore::open(&path).unwrap());

    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(ApiKey::new(served, "api_key"));
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();

    let key = admin.issue(()).await.unwrap();
    let packet = map(&[("api_key", Value::from(key.as_str()))]);
    let mut client = RawClient::connect(addr).await;
    assert_eq!(client.request(Encoding::Json, &packet).await.1, packet);
    assert_eq!(client.request(Encoding::Json, &packet).await.1, packet);

    admin.revoke(&key).await.unwrap();
    client.send(Encoding::Json, &packet).await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;

    let wrong = map(&[("api_key", Value::from("guess"))]);
    let mut client = RawClient::connect(addr).await;
    client.send(Encoding::Json, &wrong).await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}
