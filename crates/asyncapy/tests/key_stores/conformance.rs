//! The behaviour every [`KeyStore`] backend must have: one suite, run against
//! the memory store (`tests/keys.rs`), SQLite (`tests/keys_sqlite.rs`) and
//! Redis (`tests/keys_redis.rs`).
//!
//! [`conformance`] takes one empty store; [`shared_conformance`] takes two
//! handles on the same data (two opens of one SQLite file, two connections to
//! one Redis), as two processes or two servers would hold them.

use std::collections::HashSet;
use std::sync::Arc;

use asyncapy::asyncaproto::{Map, Value};
use asyncapy::keys::{
    generate_key, key_digest, ApiKeyFactory, KeyError, KeyStore, ListedKey, Rename,
    DEFAULT_KEY_SIZE,
};

/// Metadata of every shape a backend must give back unchanged.
pub fn metadata_samples() -> Vec<Value> {
    let mut nested = Map::new();
    nested.insert("user", "ada");
    nested.insert("quota", 1000);
    nested.insert("ratio", 0.25);
    nested.insert("admin", false);
    nested.insert("tags", vec!["a", "b"]);
    nested.insert("none", Value::Null);
    nested.insert("unicode", "héllo ✓ 🦀");
    nested.insert("big", u64::MAX);
    nested.insert("negative", i64::MIN);
    nested.insert("bytes", Value::bin(vec![0u8, 255, 1]));
    nested.insert("inner", Map::from_iter([("deep", vec![1, 2, 3])]));
    vec![
        Value::Null,
        Value::from(Map::new()),
        Value::from(nested),
        Value::from("a string"),
        Value::from(42),
        Value::from(vec![Value::from(1), Value::from("x")]),
    ]
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, KeyError>, what: &str) {
    match result {
        Err(KeyError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// The behaviour every key store must have, through the store's own methods
/// and through an [`ApiKeyFactory`] over it. `store` must start empty, and is
/// left empty.
pub async fn conformance<S: KeyStore + ?Sized>(store: Arc<S>) {
    assert_eq!(
        store.list().await.unwrap(),
        vec![],
        "the store starts empty"
    );
    store_level(&*store).await;
    listing(&*store).await;
    factory_level(ApiKeyFactory::from_arc(Arc::clone(&store))).await;
    concurrency(ApiKeyFactory::from_arc(Arc::clone(&store))).await;
    assert_eq!(store.list().await.unwrap(), vec![], "the suite cleans up");
}

/// The trait's contract, method by method.
async fn store_level<S: KeyStore + ?Sized>(store: &S) {
    let (a, b, c) = (
        generate_key(32).unwrap(),
        generate_key(32).unwrap(),
        generate_key(32).unwrap(),
    );
    let contains_now_agrees = |key: &str, expected: bool| {
        if let Some(answer) = store.contains_now(key) {
            assert_eq!(answer.unwrap(), expected, "contains_now({key})");
        }
    };

    // Absent keys.
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.contains(&a).await.unwrap());
    contains_now_agrees(&a, false);
    assert!(!store.update(&a, Value::from(1)).await.unwrap());
    assert!(!store.remove(&a).await.unwrap());
    assert_eq!(store.rename(&a, &b).await.unwrap(), Rename::NotFound);
    assert!(
        !store.contains(&b).await.unwrap(),
        "a failed rename creates nothing"
    );

    // insert: never overwrites.
    assert!(store.insert(&a, Value::from("first")).await.unwrap());
    assert!(!store.insert(&a, Value::from("second")).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("first")));
    assert!(store.contains(&a).await.unwrap());
    contains_now_agrees(&a, true);

    // Keys are exact: no prefix, case or whitespace slack.
    for near in [
        a[..31].to_owned(),
        format!("{a}x"),
        a.to_lowercase(),
        format!(" {a}"),
    ] {
        if near != a {
            assert!(
                !store.contains(&near).await.unwrap(),
                "{near:?} is not {a:?}"
            );
            assert_eq!(store.get(&near).await.unwrap(), None);
        }
    }
    assert!(!store.contains("").await.unwrap());

    // update replaces the metadata.
    assert!(store.update(&a, Value::from("updated")).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("updated")));

    // rename: moves, refuses a taken target, leaves both untouched then.
    assert!(store.insert(&b, Value::from("b")).await.unwrap());
    assert_eq!(store.rename(&a, &b).await.unwrap(), Rename::Taken);
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("updated")));
    assert_eq!(store.get(&b).await.unwrap(), Some(Value::from("b")));
    assert_eq!(store.rename(&a, &c).await.unwrap(), Rename::Renamed);
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.contains(&a).await.unwrap());
    contains_now_agrees(&a, false);
    assert_eq!(store.get(&c).await.unwrap(), Some(Value::from("updated")));

    // remove.
    assert!(store.remove(&b).await.unwrap());
    assert!(!store.remove(&b).await.unwrap());
    assert!(store.remove(&c).await.unwrap());
    assert!(!store.contains(&c).await.unwrap());

    // A removed key can be inserted again (a store never remembers it as taken).
    assert!(store.insert(&b, Value::Null).await.unwrap());
    assert_eq!(store.get(&b).await.unwrap(), Some(Value::Null));
    assert!(store.remove(&b).await.unwrap());

    // Metadata comes back as it went in.
    for (i, metadata) in metadata_samples().into_iter().enumerate() {
        let key = format!("sample-{i}-{}", generate_key(8).unwrap());
        assert!(store.insert(&key, metadata.clone()).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), Some(metadata), "sample {i}");
        assert!(store.remove(&key).await.unwrap());
    }
}

/// `list`: digests (never keys) and metadata of the live keys, by digest.
async fn listing<S: KeyStore + ?Sized>(store: &S) {
    let keys: Vec<String> = (0..3).map(|_| generate_key(32).unwrap()).collect();
    let mut expected = Vec::new();
    for (i, key) in (0i64..).zip(&keys) {
        let metadata = Value::from(Map::from_iter([("n", i)]));
        assert!(store.insert(key, metadata.clone()).await.unwrap());
        expected.push(ListedKey::new(key_digest(key), metadata));
    }
    expected.sort_by(|a, b| a.digest.cmp(&b.digest));
    let listed = store.list().await.unwrap();
    assert_eq!(listed, expected);
    let shown = format!("{listed:?}");
    for key in &keys {
        assert!(!shown.contains(key.as_str()), "a listing never shows a key");
    }
    for entry in &listed {
        assert_eq!(entry.digest.len(), 64);
        assert!(entry
            .digest
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    // Revoked and renamed keys leave the listing; metadata follows a rename.
    assert!(store.remove(&keys[0]).await.unwrap());
    let renamed = generate_key(32).unwrap();
    assert_eq!(
        store.rename(&keys[1], &renamed).await.unwrap(),
        Rename::Renamed
    );
    let mut expected = vec![
        ListedKey::new(key_digest(&keys[2]), Map::from_iter([("n", 2)])),
        ListedKey::new(key_digest(&renamed), Map::from_iter([("n", 1)])),
    ];
    expected.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(store.list().await.unwrap(), expected);
    assert!(store.remove(&keys[2]).await.unwrap());
    assert!(store.remove(&renamed).await.unwrap());
    assert_eq!(store.list().await.unwrap(), vec![]);
}

/// The factory's operations, as Python's APIKeyFactory documents them.
async fn factory_level<S: KeyStore + ?Sized>(factory: ApiKeyFactory<S>) {
    assert_eq!(factory.size(), DEFAULT_KEY_SIZE);

    // issue / get / contains.
    let meta = Value::from(Map::from_iter([("user", "ada")]));
    let key = factory.issue(meta.clone()).await.unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(factory.get(&key).await.unwrap(), meta);
    assert!(factory.contains(&key).await.unwrap());
    let bare = factory.issue(()).await.unwrap();
    assert!(
        factory.get(&bare).await.unwrap().is_null(),
        "issue() carries None"
    );
    assert_ne!(key, bare);

    // update.
    let meta2 = Value::from(Map::from_iter([("user", "ada"), ("plan", "pro")]));
    factory.update(&key, meta2.clone()).await.unwrap();
    assert_eq!(factory.get(&key).await.unwrap(), meta2);

    // reissue: new key, same metadata, old key revoked.
    let new = factory.reissue(&key).await.unwrap();
    assert_ne!(new, key);
    assert_eq!(new.len(), 32);
    assert_eq!(factory.get(&new).await.unwrap(), meta2);
    assert!(!factory.contains(&key).await.unwrap());
    assert_not_found(factory.get(&key).await, "get of a reissued key");

    // revoke.
    factory.revoke(&new).await.unwrap();
    assert!(!factory.contains(&new).await.unwrap());

    // Every operation on a key that is not live is NotFound (Python's KeyError).
    for dead in [key.as_str(), new.as_str(), "never-issued", ""] {
        assert_not_found(factory.get(dead).await, "get");
        assert_not_found(factory.revoke(dead).await, "revoke");
        assert_not_found(factory.reissue(dead).await, "reissue");
        assert_not_found(factory.update(dead, Value::Null).await, "update");
        assert!(!factory.contains(dead).await.unwrap());
    }

    // Other keys are untouched by all of that.
    assert!(factory.get(&bare).await.unwrap().is_null());
    factory.revoke(&bare).await.unwrap();

    // Other key sizes.
    let long = factory.clone().with_size(64);
    let key = long.issue(()).await.unwrap();
    assert_eq!(key.len(), 64);
    let again = long.reissue(&key).await.unwrap();
    assert_eq!(again.len(), 64);
    long.revoke(&again).await.unwrap();
}

/// Concurrent use: issued keys are unique, and a key reissued from several
/// tasks at once is reissued exactly once.
async fn concurrency<S: KeyStore + ?Sized>(factory: ApiKeyFactory<S>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let factory = factory.clone();
        tasks.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            for i in 0..50 {
                keys.push(factory.issue(i).await.unwrap());
            }
            keys
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for key in task.await.unwrap() {
            assert!(factory.contains(&key).await.unwrap());
            assert!(all.insert(key), "a key was issued twice");
        }
    }
    assert_eq!(all.len(), 400);

    let contested = factory.issue("contested").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (factory, key) = (factory.clone(), contested.clone());
        tasks.push(tokio::spawn(async move { factory.reissue(&key).await }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(new) => winners.push(new),
            Err(KeyError::NotFound) => {}
            Err(e) => panic!("reissue failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reissue wins");
    assert_eq!(factory.get(&winners[0]).await.unwrap(), "contested");
    assert!(!factory.contains(&contested).await.unwrap());

    for key in all.iter().chain(&winners) {
        factory.revoke(key).await.unwrap();
    }
}

/// Two handles on the same data (two processes on one SQLite file, two
/// servers on one Redis): what one does, the other sees at once, and
/// concurrent reissues through both still leave exactly one winner. Both must
/// start empty; both are left empty.
pub async fn shared_conformance<A, B>(a: Arc<A>, b: Arc<B>)
where
    A: KeyStore + ?Sized,
    B: KeyStore + ?Sized,
{
    let (fa, fb) = (ApiKeyFactory::from_arc(a), ApiKeyFactory::from_arc(b));
    let key = fa.issue("shared").await.unwrap();
    assert_eq!(fb.get(&key).await.unwrap(), "shared");
    fb.update(&key, "updated").await.unwrap();
    assert_eq!(fa.get(&key).await.unwrap(), "updated");
    let new = fb.reissue(&key).await.unwrap();
    assert!(!fa.contains(&key).await.unwrap());
    assert_eq!(fa.get(&new).await.unwrap(), "updated");
    fa.revoke(&new).await.unwrap();
    assert!(
        !fb.contains(&new).await.unwrap(),
        "a revocation is seen at once"
    );
    assert_not_found(fb.revoke(&new).await, "revoke through the other handle");

    // Concurrent reissues through both handles: one wins.
    let contested = fa.issue("contested").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (fa, fb, key) = (fa.clone(), fb.clone(), contested.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                fa.reissue(&key).await
            } else {
                fb.reissue(&key).await
            }
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(new) => winners.push(new),
            Err(KeyError::NotFound) => {}
            Err(e) => panic!("reissue failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reissue wins");
    assert_eq!(fb.get(&winners[0]).await.unwrap(), "contested");
    fa.revoke(&winners[0]).await.unwrap();
    assert_eq!(fa.list().await.unwrap(), vec![]);
    assert_eq!(fb.list().await.unwrap(), vec![]);
}
