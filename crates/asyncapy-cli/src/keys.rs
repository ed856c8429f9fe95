//! `asyncapy keys`: issue, inspect, update, reissue, revoke and list API keys
//! in an SQLite file or a Redis; and the store behind `serve --keys`.
//!
//! Every command prints one line of JSON on stdout. Keys are printed only by
//! `issue` and `reissue`, which make them; everything else shows digests.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use asyncapy::asyncaproto::{json, Map, Value};
use asyncapy::keys::{
    key_digest, ApiKeyFactory, KeyError, KeyStore, ListedKey, RedisKeyStore, SqliteKeyStore,
    DEFAULT_KEY_SIZE,
};

/// Where keys are kept, and how to reach the store.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The key store (see the help text).
    #[arg(
        long = "keys",
        visible_alias = "store",
        value_name = "STORE",
        help = "The key store: sqlite:PATH (a file, created if missing) or \
                redis://[:PASSWORD@]HOST[:PORT][/DB]"
    )]
    pub(crate) keys: Option<String>,
    /// What the store's Redis keys start with (Redis only).
    #[arg(long, value_name = "PREFIX", default_value = RedisKeyStore::DEFAULT_PREFIX)]
    pub(crate) keys_prefix: String,
    /// Seconds any one Redis operation may take before it fails (Redis only).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub(crate) keys_timeout: f64,
}

impl StoreArgs {
    /// Opens the store: checks that it is reachable (Redis answers, the
    /// SQLite file opens). Must run inside the runtime that will use it.
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn KeyStore>> {
        let Some(spec) = &self.keys else {
            bail!("no key store: pass --keys sqlite:PATH or --keys redis://HOST[:PORT][/DB]");
        };
        if let Some(path) = spec.strip_prefix("sqlite:") {
            // sqlite:///abs/path and sqlite://rel/path read as URLs would.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                bail!("--keys sqlite:PATH needs a path");
            }
            let store = SqliteKeyStore::open(path).map_err(flat)?;
            return Ok(Arc::new(store));
        }
        let redis = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if redis.iter().any(|scheme| spec.starts_with(scheme)) {
            if !(self.keys_timeout.is_finite() && self.keys_timeout > 0.0) {
                bail!("--keys-timeout must be a positive number of seconds");
            }
            let store = RedisKeyStore::builder(spec.as_str())
                .prefix(self.keys_prefix.as_str())
                .timeout(Duration::from_secs_f64(self.keys_timeout))
                .connect()
                .await
                .map_err(flat)?;
            return Ok(Arc::new(store));
        }
        if spec.trim().is_empty() {
            bail!("no key store given: --keys takes sqlite:PATH or redis://HOST[:PORT][/DB]");
        }
        // The spec may hold a password: show its scheme only. Without a
        // scheme (no ':'), it holds no password: it is likely a file's path.
        let Some((scheme, _)) = spec.split_once(':') else {
            bail!(
                "key store {spec:?} has no scheme: write sqlite:{spec} for an SQLite file, \
                 or redis://HOST[:PORT][/DB] for a Redis"
            );
        };
        bail!("unknown key store {scheme:?}: --keys takes sqlite:PATH or redis://HOST[:PORT][/DB]")
    }

    /// The store for log lines: its kind and place, never a password.
    pub(crate) fn describe(&self) -> String {
        match self.keys.as_deref() {
            Some(spec) if spec.starts_with("sqlite:") => spec.to_owned(),
            Some(spec) => match spec.split_once("://") {
                Some((scheme, rest)) => {
                    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                    format!("{scheme}://{rest}")
                }
                None => "a key store".to_owned(),
            },
            None => "no key store".to_owned(),
        }
    }
}

/// Options of `asyncapy keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    action: Action,
}

/// A key on the command line, or "-" to read it from standard input (which
/// keeps it out of the shell's history and the process list).
const KEY_HELP: &str = "The key (\"-\" reads it from standard input)";

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Issue a new key. Prints {"key", "digest", "metadata"}: the only time
    /// the key is shown.
    Issue {
        /// The key's metadata, any JSON value (default null).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// Characters in the key: letters and digits.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_KEY_SIZE as u64,
              value_parser = clap::value_parser!(u64).range(1..=4096))]
        size: u64,
    },
    /// Print a key's digest and metadata.
    Get {
        #[arg(help = KEY_HELP)]
        key: String,
    },
    /// Replace a key's metadata.
    Update {
        #[arg(help = KEY_HELP)]
        key: String,
        /// The new metadata, any JSON value.
        #[arg(value_name = "JSON")]
        metadata: String,
    },
    /// Replace a key with a new one carrying the same metadata; the old key
    /// stops working at once. Prints {"key", "digest", "revoked"}.
    Reissue {
        #[arg(help = KEY_HELP)]
        key: String,
        /// Characters in the new key.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_KEY_SIZE as u64,
              value_parser = clap::value_parser!(u64).range(1..=4096))]
        size: u64,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        #[arg(help = KEY_HELP)]
        key: String,
    },
    /// List live keys as digests with their metadata (never the keys), as a
    /// JSON array.
    List,
}

fn parse_metadata(text: &str) -> anyhow::Result<Value> {
    json::decode(text.as_bytes()).with_context(|| format!("the metadata is not JSON: {text}"))
}

/// `key`, or the first line of standard input when it is "-".
fn read_key(key: &str) -> anyhow::Result<String> {
    if key != "-" {
        return Ok(key.to_owned());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the key from standard input")?;
    let key = line.trim();
    if key.is_empty() {
        bail!("no key on standard input");
    }
    Ok(key.to_owned())
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(Map::from_iter(pairs))
}

/// A store failure as one message. Store errors carry their cause in their
/// message and as their source; printed as a chain it would show twice.
fn flat(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn not_found(key: &str) -> impl FnOnce(KeyError) -> anyhow::Error + '_ {
    move |e| match e {
        KeyError::NotFound => anyhow::anyhow!("no such API key (digest {})", key_digest(key)),
        other => flat(other),
    }
}

fn listed(entry: ListedKey) -> Value {
    object([
        ("digest", Value::from(entry.digest)),
        ("metadata", entry.metadata),
    ])
}

async fn act(factory: ApiKeyFactory<dyn KeyStore>, action: Action) -> anyhow::Result<Value> {
    let size = |n: u64| usize::try_from(n).context("--size is too large");
    Ok(match action {
        Action::Issue { metadata, size: n } => {
            let metadata = metadata
                .as_deref()
                .map_or(Ok(Value::Null), parse_metadata)?;
            let key = factory
                .with_size(size(n)?)
                .issue(metadata.clone())
                .await
                .map_err(flat)?;
            object([
                ("digest", Value::from(key_digest(&key))),
                ("key", Value::from(key)),
                ("metadata", metadata),
            ])
        }
        Action::Get { key } => {
            let key = read_key(&key)?;
            let metadata = factory.get(&key).await.map_err(not_found(&key))?;
            object([
                ("digest", Value::from(key_digest(&key))),
                ("metadata", metadata),
            ])
        }
        Action::Update { key, metadata } => {
            let key = read_key(&key)?;
            let metadata = parse_metadata(&metadata)?;
            factory
                .update(&key, metadata.clone())
                .await
                .map_err(not_found(&key))?;
            object([
                ("digest", Value::from(key_digest(&key))),
                ("metadata", metadata),
            ])
        }
        Action::Reissue { key, size: n } => {
            let key = read_key(&key)?;
            let new = factory
                .with_size(size(n)?)
                .reissue(&key)
                .await
                .map_err(not_found(&key))?;
            object([
                ("digest", Value::from(key_digest(&new))),
                ("key", Value::from(new)),
                ("revoked", Value::from(key_digest(&key))),
            ])
        }
        Action::Revoke { key } => {
            let key = read_key(&key)?;
            factory.revoke(&key).await.map_err(not_found(&key))?;
            object([("revoked", Value::from(key_digest(&key)))])
        }
        Action::List => {
            let keys = factory.list().await.map_err(flat)?;
            Value::Array(keys.into_iter().map(listed).collect())
        }
    })
}

/// Runs one `asyncapy keys` command and prints its JSON.
pub(crate) fn run(args: KeysArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let output = runtime.block_on(async {
        let store = args.store.open().await?;
        act(ApiKeyFactory::from_arc(store), args.action).await
    })?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{output}")?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(spec: &str) -> StoreArgs {
        StoreArgs {
            keys: Some(spec.to_owned()),
            keys_prefix: RedisKeyStore::DEFAULT_PREFIX.to_owned(),
            keys_timeout: 2.0,
        }
    }

    #[test]
    fn descriptions_never_show_a_password() {
        assert_eq!(
            store("redis://:pw@10.0.0.1:6379/2").describe(),
            "redis://10.0.0.1:6379/2"
        );
        assert_eq!(store("redis://user:p@ss@host").describe(), "redis://host");
        assert_eq!(
            store("sqlite:/var/keys.db").describe(),
            "sqlite:/var/keys.db"
        );
    }

    #[tokio::test]
    async fn unknown_stores_are_named_by_scheme_only() {
        let err = store("postgres://admin:secret@db/keys")
            .open()
            .await
            .err()
            .unwrap();
        let text = format!("{err:#}");
        assert!(
            text.contains("\"postgres\"") && !text.contains("secret"),
            "{text}"
        );
        assert!(store("sqlite:").open().await.is_err());
        let err = store("/var/keys.db").open().await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "key store \"/var/keys.db\" has no scheme: write sqlite:/var/keys.db for an SQLite \
             file, or redis://HOST[:PORT][/DB] for a Redis"
        );
        let none = StoreArgs {
            keys: None,
            ..store("")
        };
        assert!(none.open().await.is_err());
    }

    #[tokio::test]
    async fn sqlite_urls_with_slashes_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let spec = format!("sqlite://{}", path.display());
        store(&spec).open().await.unwrap();
        assert!(path.exists());
    }
}
