//! [`ApiKey`]: packets carrying a live key of an [`ApiKeyFactory`].

use std::fmt;
use std::sync::Arc;

use asyncaproto::Value;

use super::{Check, Filter};
use crate::keys::{ApiKeyFactory, KeyStore, KeyStoreError, MemoryKeyStore};
use crate::metrics::Metrics;
use crate::packet::Packet;
use crate::session::Client;

/// Passes packets whose field `field_name` is a string holding a live key of
/// `factory` (the original's `Filters.APIFactory(factory, field_name)`).
///
/// A missing field, a value that is not a string, an unknown or revoked key
/// all fail. So does a store failure: it is logged (at `warn`, without the
/// key) and the packet is treated as not authorised; it never panics.
///
/// The key's metadata goes on to the handler: an [`ApiKeyInfo`] argument.
///
/// With a store that answers at once ([`MemoryKeyStore`], or any store
/// implementing [`KeyStore::get_now`]) the check is synchronous (it copies
/// the key's metadata for the handler, nothing else). Otherwise it returns
/// [`Check::later_with`], which the server
/// awaits within the session's `timeout` (a store that hangs ends the session
/// with `ERR_TIMED_OUT`, it does not hang it).
///
/// ```
/// use asyncapy::filters::ApiKey;
/// use asyncapy::keys::ApiKeyFactory;
/// use asyncapy::{Client, Config, Packet, Server};
///
/// async fn private(client: Client, packet: Packet) {
///     let _ = client.send(&packet).await;
/// }
///
/// let factory = ApiKeyFactory::new();
/// let mut server = Server::new(Config::default());
/// // Python: server.add_handler(Filters.APIFactory(factory, "api_key"))
/// server.add_handler(private).filter(ApiKey::new(factory.clone(), "api_key"));
/// ```
pub struct ApiKey<S: ?Sized = MemoryKeyStore> {
    factory: ApiKeyFactory<S>,
    field: Box<str>,
}

impl<S: KeyStore + ?Sized> ApiKey<S> {
    /// A filter passing packets whose `field_name` holds a live key of `factory`.
    ///
    /// ```
    /// use asyncapy::filters::ApiKey;
    /// let filter = ApiKey::new(asyncapy::keys::ApiKeyFactory::new(), "key");
    /// assert_eq!(filter.field_name(), "key");
    /// ```
    pub fn new(factory: ApiKeyFactory<S>, field_name: impl Into<String>) -> Self {
        ApiKey {
            factory,
            field: field_name.into().into_boxed_str(),
        }
    }

    /// The field the key is read from.
    ///
    /// ```
    /// let filter = asyncapy::filters::ApiKey::new(asyncapy::keys::ApiKeyFactory::new(), "token");
    /// assert_eq!(filter.field_name(), "token");
    /// ```
    pub fn field_name(&self) -> &str {
        &self.field
    }

    /// The factory whose keys pass.
    ///
    /// ```
    /// let filter = asyncapy::filters::ApiKey::new(asyncapy::keys::ApiKeyFactory::new(), "k");
    /// assert_eq!(filter.factory().size(), 32);
    /// ```
    pub fn factory(&self) -> &ApiKeyFactory<S> {
        &self.factory
    }
}

impl<S: KeyStore + ?Sized> Filter for ApiKey<S> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        let Some(Value::Str(key)) = packet.get(&self.field) else {
            return Check::Fail;
        };
        let store = self.factory.store_arc();
        match store.get_now(key) {
            Some(answer) => match authorised(answer, store.name(), client.metrics()) {
                Some(info) => Check::pass_with(info),
                None => Check::Fail,
            },
            None => {
                let store = Arc::clone(store);
                let key = key.clone();
                let metrics = client.metrics().cloned();
                Check::later_with(async move {
                    authorised(store.get(&key).await, store.name(), metrics.as_ref())
                })
            }
        }
    }
}

/// What the [`ApiKey`] filter found: the metadata of the packet's key (as
/// issued or last updated). A handler behind the filter takes it as an
/// argument, without looking the key up again.
///
/// ```
/// use asyncapy::filters::{ApiKey, ApiKeyInfo};
/// use asyncapy::keys::ApiKeyFactory;
/// use asyncapy::{Client, Config, Server};
///
/// async fn whoami(client: Client, key: ApiKeyInfo) {
///     let user = key.metadata["user"].as_str().unwrap_or("?").to_owned();
///     let _ = client.send(asyncapy::asyncaproto::Map::from_iter([("user", user)])).await;
/// }
///
/// let factory = ApiKeyFactory::new();
/// let mut server = Server::new(Config::default());
/// server.add_handler(whoami).filter(ApiKey::new(factory, "api_key"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// The key's metadata.
    pub metadata: Value,
}

/// The key's metadata, or `None` (a failure of the store, named `store`, is
/// logged and counted).
fn authorised(
    answer: Result<Option<Value>, KeyStoreError>,
    store: &'static str,
    metrics: Option<&Arc<Metrics>>,
) -> Option<ApiKeyInfo> {
    match answer {
        Ok(metadata) => metadata.map(|metadata| ApiKeyInfo { metadata }),
        Err(e) => {
            if let Some(metrics) = metrics {
                metrics.key_store_error(store);
            }
            tracing::warn!("API key check failed, packet refused: {e}");
            None
        }
    }
}

impl<S: ?Sized> Clone for ApiKey<S> {
    fn clone(&self) -> Self {
        ApiKey {
            factory: self.factory.clone(),
            field: self.field.clone(),
        }
    }
}

impl<S: ?Sized> fmt::Debug for ApiKey<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("factory", &self.factory)
            .field("field", &self.field)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};

    use asyncaproto::{Encoding, FrameCodec, Map};

    use super::*;
    use crate::keys::{Rename, StoreFuture};
    use crate::session::{Registry, SessionState};

    fn client() -> Client {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let registry = Arc::new(Registry::new(0));
        Client::new(Arc::new(SessionState::new(
            peer,
            FrameCodec::default(),
            registry,
        )))
    }

    fn packet(pairs: &[(&str, Value)]) -> Packet {
        let map: Map = pairs.iter().map(|(k, v)| (*k, v.clone())).collect();
        Packet::new(map, Encoding::Json)
    }

    fn answer(check: Check) -> Option<bool> {
        match check {
            Check::Pass | Check::PassWith(_) => Some(true),
            Check::Fail => Some(false),
            Check::Later(_) => None,
        }
    }

    #[tokio::test]
    async fn memory_keys_are_checked_at_once() {
        let factory = ApiKeyFactory::new();
        let key = factory.issue(()).await.unwrap();
        let filter = ApiKey::new(factory.clone(), "key");
        let c = client();
        assert_eq!(
            answer(filter.check(&c, &packet(&[("key", key.as_str().into())]))),
            Some(true)
        );
        assert_eq!(
            answer(filter.check(&c, &packet(&[("key", "guess".into())]))),
            Some(false)
        );
        assert_eq!(answer(filter.check(&c, &packet(&[]))), Some(false));
        assert_eq!(
            answer(filter.check(&c, &packet(&[("other", key.as_str().into())]))),
            Some(false)
        );
        for not_a_string in [Value::Null, Value::from(1), Value::from(vec![key.as_str()])] {
            assert_eq!(
                answer(filter.check(&c, &packet(&[("key", not_a_string)]))),
                Some(false)
            );
        }
        factory.revoke(&key).await.unwrap();
        assert_eq!(
            answer(filter.check(&c, &packet(&[("key", key.as_str().into())]))),
            Some(false)
        );
    }

    /// A store that must be awaited, and can be told to fail.
    #[derive(Default)]
    struct Remote {
        inner: MemoryKeyStore,
        down: AtomicBool,
    }

    impl Remote {
        fn wrap<'a, T: Send + 'a>(&'a self, inner: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
            Box::pin(async move {
                tokio::task::yield_now().await;
                if self.down.load(Ordering::Relaxed) {
                    return Err(KeyStoreError::backend("connection refused"));
                }
                inner.await
            })
        }
    }

    impl KeyStore for Remote {
        fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
            self.wrap(self.inner.insert(key, metadata))
        }
        fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
            self.wrap(self.inner.get(key))
        }
        fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
            self.wrap(self.inner.contains(key))
        }
        fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
            self.wrap(self.inner.update(key, metadata))
        }
        fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
            self.wrap(self.inner.remove(key))
        }
        fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
            self.wrap(self.inner.rename(old, new))
        }
    }

    #[tokio::test]
    async fn async_stores_answer_later_and_failures_refuse() {
        let factory = ApiKeyFactory::with_store(Remote::default());
        let key = factory.issue(()).await.unwrap();
        let filter = ApiKey::new(factory.clone(), "key");
        let c = client();
        let with_key = packet(&[("key", key.as_str().into())]);
        let check = filter.check(&c, &with_key);
        assert!(matches!(check, Check::Later(_)));
        assert!(check.resolve().await);
        assert!(
            !filter
                .check(&c, &packet(&[("key", "guess".into())]))
                .resolve()
                .await
        );
        // No field: refused without asking the store.
        assert!(matches!(filter.check(&c, &packet(&[])), Check::Fail));

        factory.store().down.store(true, Ordering::Relaxed);
        assert!(!filter.check(&c, &with_key).resolve().await);
        factory.store().down.store(false, Ordering::Relaxed);
        assert!(filter.check(&c, &with_key).resolve().await);
    }

    #[tokio::test]
    async fn a_trait_object_factory_works_too() {
        let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
        let factory = ApiKeyFactory::from_arc(store);
        let key = factory.issue(()).await.unwrap();
        let filter = ApiKey::new(factory, "k");
        let check = filter.check(&client(), &packet(&[("k", key.as_str().into())]));
        assert!(matches!(check, Check::PassWith(_)));
    }
}
