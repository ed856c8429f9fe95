//! Server configuration: the original AsyncAPY options with their defaults, ours
//! beside them, loading from an AsyncAPY `config.ini`, and validation.
//!
//! Each option is declared once, in the option table of this file (the
//! `options!` macro): its name, Rust type, default, parser, check and doc
//! line. Everything else is derived from that table: the fields of
//! [`Config`] and its `Default`, the INI keys ([`KEYS`]), [`Config::set`],
//! the per-option checks of [`Config::validate`], the setters of
//! [`ServerBuilder`](crate::ServerBuilder), the `asyncapy serve` flags (from
//! [`OPTIONS`]), and the table of options in [`Config`]'s docs and in the
//! README ([`options_table`]). Adding an option is one row of the table, plus
//! the code that gives it its effect.
//!
//! [`Config::validate`] reads no file: the TLS files are read when the server
//! is built ([`ServerBuilder::build`](crate::ServerBuilder::build), or
//! [`Server::bind`](crate::Server::bind) for a [`Server::new`](crate::Server::new)),
//! and a missing, unreadable or mismatched file is an error naming its key.
//! Relative paths are relative to the working directory.
//!
//! ```
//! use asyncapy::Config;
//!
//! let config = Config::from_ini_str("[AsyncAPY]\nport = 1500\ntimeout = 15\n")?;
//! assert_eq!(config.port, 1500);
//! assert_eq!(config.timeout.as_secs(), 15);
//! assert_eq!(config.header_size, 4); // defaults fill the rest
//!
//! let err = Config::from_ini_str("[AsyncAPY]\nheader_size = 9\n").unwrap_err();
//! assert_eq!(err.to_string(), "header_size: invalid value \"9\": must be between 1 and 8");
//! # Ok::<(), asyncapy::ConfigError>(())
//! ```

use std::path::Path;
use std::time::Duration;

use asyncaproto::FrameConfig;

use crate::ini::{Ini, IniError};
pub use crate::logging::LogLevel;
use crate::logging::{FormatError, PythonFormat};

/// The section of an AsyncAPY INI file that holds the server options.
pub const INI_SECTION: &str = "AsyncAPY";

/// The option table: every option of [`Config`], once, in the order of the
/// INI keys. A row is
///
/// ```text
/// /// Doc line: the table's "meaning", the flag's help, the field's first line.
/// /// More lines: the field's and the setter's docs.
/// name: Type = default expression, shown "the default as the docs show it",
///     parse |key, value| the value from its text (INI, flag, `Config::set`),
///     check |key, value| a range check of `Config::validate` (optional),
///     setter { argument: Type => the field's value } (or `setter {}`: none);
/// ```
///
/// The macro hands the rows to `$callback`, a macro that matches them
/// ([`define_config`] here, `builder_setters` beside the builder).
macro_rules! options {
    ($callback:ident) => {
        $callback! {
            /// Address to bind (an IP address or a host name).
            addr: String = "127.0.0.1".to_owned(), shown "`127.0.0.1`",
                parse |key, value| {
                    let v = value.trim();
                    if v.is_empty() {
                        return Err(invalid(key, value, "must be an IP address or a host name"));
                    }
                    Ok(v.to_owned())
                },
                setter { value: impl Into<String> => value.into() };
            /// TCP port (0 picks a free one).
            port: u16 = 8081, shown "`8081`",
                parse |key, value| parse_int(key, value, "must be a port number from 0 to 65535"),
                setter { value: u16 => value };
            /// Bytes reserved for a session's first read; the buffer grows to hold whole packets.
            buf: usize = 1024, shown "`1024`",
                parse |key, value| parse_int(key, value, "must be a positive number of bytes"),
                check |key, v| ensure(key, (1..=64 << 20).contains(v), v, "must be between 1 and 67108864 bytes"),
                setter { value: usize => value };
            /// Python level number (10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL) or name.
            logging_level: crate::logging::LogLevel = crate::logging::LogLevel::INFO, shown "`20`",
                parse |key, value| crate::logging::LogLevel::parse(value).ok_or_else(|| invalid(
                    key,
                    value,
                    "must be a Python level number (10, 20, 30, 40, 50) or name (DEBUG, INFO, ...)",
                )),
                setter { value: crate::logging::LogLevel => value };
            /// Python `logging` format of each line (in an INI file, write `%%` for `%`, as Python's configparser requires).
            console_format: String = "[%(levelname)s] %(asctime)s %(message)s".to_owned(),
                shown "`[%(levelname)s] %(asctime)s %(message)s`",
                parse |_key, value| Ok(value.to_owned()),
                setter { value: impl Into<String> => value.into() };
            /// `text` (`console_format`, the default) or `json`: one JSON object a line (time, level, message, session, peer; handler, outcome, duration of each packet at DEBUG).
            log_format: crate::logging::LogFormat = crate::logging::LogFormat::Text, shown "`text`",
                parse |key, value| value.parse().map_err(|()| invalid(key, value, "must be 'text' or 'json'")),
                setter { value: crate::logging::LogFormat => value };
            /// strftime format of `%(asctime)s` (`%%` for `%` in an INI file too).
            datefmt: String = "%d/%m/%Y %H:%M:%S %p".to_owned(), shown "`%d/%m/%Y %H:%M:%S %p`",
                parse |_key, value| Ok(value.to_owned()),
                setter { value: impl Into<String> => value.into() };
            /// Seconds without a complete packet, or of one handler, before `ERR_TIMED_OUT`.
            /// The same limit bounds a write to a peer that takes no bytes.
            timeout: std::time::Duration = std::time::Duration::from_secs(60), shown "`60`",
                parse |key, value| parse_seconds(key, value),
                check |key, v| ensure(key, !v.is_zero(), "0", "must be a positive number of seconds"),
                setter { value: std::time::Duration => value };
            /// Bytes of the Content-Length field (1 to 8).
            header_size: u8 = 4, shown "`4`",
                parse |key, value| parse_int(key, value, "must be between 1 and 8"),
                check |key, v| ensure(key, (1..=8).contains(v), v, "must be between 1 and 8"),
                setter { value: u8 => value };
            /// Byte order of the Content-Length field: `big` or `little`.
            byteorder: asyncaproto::ByteOrder = asyncaproto::ByteOrder::Big, shown "`big`",
                parse |key, value| value.parse().map_err(|_| invalid(key, value, "must be 'big' or 'little'")),
                setter { value: asyncaproto::ByteOrder => value };
            /// Concurrent sessions per client IP (0: no limit).
            session_limit: usize = 0, shown "`0`",
                parse |key, value| parse_int(key, value, "must be a number of sessions (0 for no limit)"),
                setter { value: usize => value };
            /// Packets per client IP: `N/SECONDS` (`100/1`), GCRA with bursts of N; a packet over it gets `ERR_RATE_LIMITED` (the session stays open).
            /// Kept in memory, per server.
            rate_limit: Option<crate::RateLimit> = None, shown "none",
                parse |key, value| value.parse().map(Some).map_err(|_| {
                    invalid(key, value, "must be N/SECONDS: a positive count over a positive number of seconds (100/1)")
                }),
                setter { rate: crate::RateLimit => Some(rate) };
            /// `redis://HOST:PORT[/DB]`: `session_limit` and `rate_limit` are kept there, shared by every server using it (feature `redis`).
            /// See the README's "Running several instances".
            limits_store: Option<String> = None, shown "none",
                parse |key, value| {
                    let v = value.trim();
                    if !v.starts_with("redis://") {
                        return Err(invalid(key, value, "must be a redis://HOST:PORT[/DB] URL"));
                    }
                    Ok(Some(v.to_owned()))
                },
                setter { url: impl Into<String> => Some(url.into()) };
            /// When `limits_store` fails or is slow: `open` lets sessions and packets through, `closed` refuses them; each failure is logged and counted.
            limits_fail: crate::LimitsFail = crate::LimitsFail::Open, shown "`open`",
                parse |key, value| value.parse().map_err(|()| invalid(key, value, "must be 'open' or 'closed'")),
                setter { value: crate::LimitsFail => value };
            /// Accepted for compatibility with the original sample; replies always use the session's encoding.
            encoding: asyncaproto::Encoding = asyncaproto::Encoding::Json, shown "`json`",
                parse |key, value| value.parse().map_err(|_| invalid(key, value, "must be 'json' or 'ziproto'")),
                setter { value: asyncaproto::Encoding => value };
            /// Largest Content-Length accepted (`ERR_PACKET_TOO_LARGE` above).
            max_packet_size: u64 = asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE, shown "`8388608`",
                parse |key, value| parse_int(key, value, "must be a number of bytes, at least 2"),
                check |key, v| ensure(key, *v >= 2, v, "must be a number of bytes, at least 2"),
                setter { value: u64 => value };
            /// Concurrent connections (`ERR_SERVER_BUSY` above).
            max_connections: usize = 10_000, shown "`10000`",
                parse |key, value| parse_int(key, value, "must be a positive number"),
                check |key, v| ensure(key, *v > 0, v, "must be a positive number"),
                setter { value: usize => value };
            /// Bytes a session's unsent replies may hold; a send to a full outbox waits for room (at most `timeout`).
            /// A single frame larger than this is taken when the outbox is empty.
            max_outbox: usize = 1 << 20, shown "`1048576`",
                parse |key, value| parse_int(key, value, "must be a positive number of bytes"),
                check |key, v| ensure(key, *v > 0, v, "must be a positive number of bytes"),
                setter { value: usize => value };
            /// Runtime worker threads (0: one per core), for `Server::start`.
            workers: usize = 0, shown "`0`",
                parse |key, value| parse_int(key, value, "must be a number of threads (0 for one per core)"),
                setter { value: usize => value };
            /// Seconds in-flight packets get to finish at shutdown.
            grace_period: std::time::Duration = std::time::Duration::from_secs(10), shown "`10`",
                parse |key, value| parse_seconds(key, value),
                setter { value: std::time::Duration => value };
            /// PEM file of the server's certificate chain (leaf first): serve TLS (feature `tls`).
            tls_cert: Option<std::path::PathBuf> = None, shown "none",
                parse |_key, value| Ok(Some(std::path::PathBuf::from(value.trim()))),
                setter { path: impl Into<std::path::PathBuf> => Some(path.into()) };
            /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1); goes with `tls_cert`.
            tls_key: Option<std::path::PathBuf> = None, shown "none",
                parse |_key, value| Ok(Some(std::path::PathBuf::from(value.trim()))),
                setter { path: impl Into<std::path::PathBuf> => Some(path.into()) };
            /// PEM file of the CAs that sign client certificates: when set, every client must present one.
            tls_client_ca: Option<std::path::PathBuf> = None, shown "none",
                parse |_key, value| Ok(Some(std::path::PathBuf::from(value.trim()))),
                setter { path: impl Into<std::path::PathBuf> => Some(path.into()) };
            /// Every connection starts with a PROXY protocol header (v1 or v2) naming the real client.
            /// See [`crate::proxy`].
            proxy_protocol: bool = false, shown "`false`",
                parse |key, value| parse_bool(value).ok_or_else(|| {
                    invalid(key, value, "must be true or false (yes/no, on/off, 1/0)")
                }),
                setter { value: bool => value };
            /// With `proxy_protocol`: the proxies' addresses or CIDR ranges (`10.0.0.0/8, ::1`); connections from elsewhere are closed.
            /// Empty: any source (put the server where only the proxy can reach it).
            proxy_trusted: Vec<crate::IpNet> = Vec::new(), shown "any",
                parse |key, value| value
                    .split([',', ' ', '\t', '\n'])
                    .filter(|entry| !entry.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| invalid(
                        key,
                        value,
                        "must be IP addresses or CIDR ranges, separated by commas",
                    )),
                setter { ranges: impl IntoIterator<Item = crate::IpNet> => ranges.into_iter().collect() };
            /// Address and port of the Prometheus metrics endpoint, `GET /metrics` (feature `metrics`; port 0 picks a free one).
            /// See the README's metrics list.
            metrics_addr: Option<std::net::SocketAddr> = None, shown "none",
                parse |key, value| value.trim().parse().map(Some).map_err(|_| {
                    invalid(key, value, "must be an IP address and a port (127.0.0.1:9100, [::1]:9100)")
                }),
                setter { addr: std::net::SocketAddr => Some(addr) };
            /// Bind with SO_REUSEPORT: a new instance can bind the same address while the old one drains (rolling restarts).
            /// Every process bound to the address gets a share of the new connections.
            reuse_port: bool = false, shown "`false`",
                parse |key, value| parse_bool(value).ok_or_else(|| {
                    invalid(key, value, "must be true or false (yes/no, on/off, 1/0)")
                }),
                setter { value: bool => value };
            /// The INI file the options were loaded from (ignored inside an INI file).
            config: Option<std::path::PathBuf> = None, shown "none",
                parse |_key, value| Ok(Some(std::path::PathBuf::from(value.trim()))),
                setter {};
        }
    };
}
pub(crate) use options;

/// One option of the table, as the `asyncapy serve` flags and the docs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionInfo {
    /// The INI key, the [`Config`] field, the builder setter (`max_outbox`).
    pub key: &'static str,
    /// The default, as the docs show it (Markdown: `` `8081` ``, none, any).
    pub default: &'static str,
    /// What the option means, in one line (Markdown).
    pub doc: &'static str,
    /// Whether the option is a `bool`: a flag without a value on a command line.
    pub switch: bool,
}

/// Generates, from the option table: [`Config`] (with the table in its
/// docs), its `Default`, [`KEYS`], [`OPTIONS`], and the per-key parts of
/// [`Config::set`] and [`Config::validate`].
macro_rules! define_config {
    ($(
        #[doc = $summary:literal]
        $(#[doc = $more:literal])*
        $name:ident : $ty:ty = $default:expr, shown $shown:literal,
            parse $parse:expr,
            $(check $check:expr,)?
            setter $setter:tt;
    )*) => {
        /// Everything a server needs to know before it starts: the options of
        /// the original AsyncAPY `Server` (each a key of the `[AsyncAPY]`
        /// section of an INI file and a flag of `asyncapy serve`) and ours.
        ///
        /// | key | default | meaning |
        /// |---|---|---|
        $(
            #[doc = concat!("| `", stringify!($name), "` | ", $shown, " |", $summary, " |")]
        )*
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $(
                #[doc = $summary]
                $(#[doc = $more])*
                pub $name: $ty,
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($name: $default,)*
                }
            }
        }

        /// Every key the `[AsyncAPY]` section may hold, in the table's order.
        pub const KEYS: [&str; OPTIONS.len()] = [$(stringify!($name)),*];

        /// Every option of [`Config`], in the table's order.
        pub const OPTIONS: [OptionInfo; [$(stringify!($name)),*].len()] = [$(
            OptionInfo {
                key: stringify!($name),
                default: $shown,
                doc: $summary.trim_ascii(),
                switch: matches!(stringify!($ty).as_bytes(), b"bool"),
            }
        ),*];

        impl Config {
            /// Sets the option `key` (one of [`KEYS`]) from its text.
            fn set_known(&mut self, key: &'static str, value: &str) -> Result<(), ConfigError> {
                match key {
                    $(stringify!($name) => {
                        let parse: fn(&'static str, &str) -> Result<$ty, ConfigError> = $parse;
                        self.$name = parse(key, value)?;
                    })*
                    _ => unreachable!("set_known is given a key of KEYS"),
                }
                Ok(())
            }

            /// The checks of the options that have one, in the table's order.
            fn check_each(&self) -> Result<(), ConfigError> {
                $($(
                    let check: fn(&'static str, &$ty) -> Result<(), ConfigError> = $check;
                    check(stringify!($name), &self.$name)?;
                )?)*
                Ok(())
            }
        }

        /// The option table in Markdown, as [`Config`]'s docs show it (the
        /// README's table is checked against it).
        pub fn options_table() -> String {
            let mut table = String::from("| key | default | meaning |\n|---|---|---|\n");
            for option in OPTIONS {
                table.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    option.key, option.default, option.doc
                ));
            }
            table
        }
    };
}

options!(define_config);

/// A configuration that cannot be used, naming the key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The option's name.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A key the `[AsyncAPY]` section does not know (likely a typo).
    #[error("{path}: unknown key '{key}' in [AsyncAPY] (known keys: {known})")]
    UnknownKey {
        /// The file.
        path: String,
        /// The unknown key.
        key: String,
        /// The known keys, comma-separated.
        known: String,
    },
    /// The file has no `[AsyncAPY]` section.
    #[error("{path}: no [AsyncAPY] section")]
    MissingSection {
        /// The file.
        path: String,
    },
    /// The file is not valid INI.
    #[error("{path}: {source}")]
    Syntax {
        /// The file.
        path: String,
        /// What is wrong, and where.
        source: IniError,
    },
    /// A TLS option that cannot be used: a missing or unreadable file, no
    /// certificate or key in it, a key that does not match the certificate, a
    /// certificate without its key, or a build without TLS.
    #[error("{key}: {reason}")]
    Tls {
        /// The option's name (`tls_cert`, `tls_key` or `tls_client_ca`).
        key: &'static str,
        /// What is wrong, naming the file.
        reason: String,
    },
    /// A log format (`console_format`, `datefmt`) that cannot be used.
    #[error("{key}: invalid value {value:?}: {reason}: {detail}")]
    Format {
        /// The option's name.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
        /// What the formatter found wrong.
        detail: String,
    },
    /// A bad value in a configuration file: the file, then what is wrong.
    #[error("{path}: {error}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong with the value (not a `source`: its text is already
        /// part of this message).
        error: Box<ConfigError>,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Config {
    /// The log format of `console_format` and `datefmt`; an error names the
    /// key whose value the formatter refused (the one place a
    /// [`FormatError`] becomes a key), with the formatter's own reason.
    pub fn log_format(&self) -> Result<PythonFormat, ConfigError> {
        PythonFormat::new(&self.console_format, &self.datefmt).map_err(|error| {
            let (key, value, reason) = match error {
                FormatError::DateFormat(_) => {
                    ("datefmt", &self.datefmt, "must be a strftime date format")
                }
                _ => (
                    "console_format",
                    &self.console_format,
                    "must be a Python logging format (%(levelname)s, %(asctime)s, %(message)s...)",
                ),
            };
            ConfigError::Format {
                key,
                value: value.clone(),
                reason,
                detail: error.to_string(),
            }
        })
    }

    /// Sets the process's log up as these options say (see
    /// [`logging::init`](crate::logging::init)): what [`Server::bind`](crate::Server::bind)
    /// does, for a program that logs before its server binds.
    pub fn init_logging(&self) -> Result<(), ConfigError> {
        let text = self.log_format()?;
        match self.log_format {
            crate::logging::LogFormat::Text => crate::logging::init(self.logging_level, text),
            crate::logging::LogFormat::Json => crate::logging::init_json(self.logging_level),
        }
        Ok(())
    }
}

impl ConfigError {
    fn in_file(path: &str, error: ConfigError) -> ConfigError {
        ConfigError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        }
    }
}

fn invalid(key: &'static str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_owned(),
        reason,
    }
}

/// A check of the option table: `ok`, or the error naming `key` and the value `shown`.
fn ensure(
    key: &'static str,
    ok: bool,
    shown: impl ToString,
    reason: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, &shown.to_string(), reason))
    }
}

fn parse_seconds(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "must be a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(invalid(key, value, "must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A boolean as Python's configparser reads one.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn parse_int<T: std::str::FromStr>(
    key: &'static str,
    value: &str,
    reason: &'static str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, reason))
}

impl Config {
    /// Loads `[AsyncAPY]` from the INI file at `path` over the defaults.
    pub fn from_ini_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.load_ini_file(path)?;
        Ok(config)
    }

    /// Loads `[AsyncAPY]` from INI text over the defaults.
    pub fn from_ini_str(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.load_ini(text, None)?;
        Ok(config)
    }

    /// Applies the `[AsyncAPY]` section of the INI file at `path` over this
    /// configuration, and remembers the path.
    pub fn load_ini_file(&mut self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: name.clone(),
            source,
        })?;
        self.load_ini_str(&text, &name)?;
        self.config = Some(path.to_owned());
        Ok(())
    }

    /// Applies the `[AsyncAPY]` section of INI `text` over this configuration.
    /// `origin` names the text in error messages.
    pub fn load_ini_str(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        self.load_ini(text, Some(origin))
    }

    /// Applies INI `text`; errors in its values name `file` when there is one.
    fn load_ini(&mut self, text: &str, file: Option<&str>) -> Result<(), ConfigError> {
        let origin = file.unwrap_or("<config>");
        let in_file = |error: ConfigError| match file {
            Some(path) => ConfigError::in_file(path, error),
            None => error,
        };
        let ini = Ini::parse(text).map_err(|source| ConfigError::Syntax {
            path: origin.to_owned(),
            source,
        })?;
        if !ini.has_section(INI_SECTION) {
            return Err(ConfigError::MissingSection {
                path: origin.to_owned(),
            });
        }
        for key in ini.keys(INI_SECTION) {
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                return Err(ConfigError::UnknownKey {
                    path: origin.to_owned(),
                    key: key.to_owned(),
                    known: KEYS.join(", "),
                });
            };
            let value = ini
                .get(INI_SECTION, key)
                .map_err(|source| ConfigError::Syntax {
                    path: origin.to_owned(),
                    source,
                })?
                .unwrap_or_default();
            // The original ignores empty values (keeping the default); so do we.
            if value.trim().is_empty() || *known == "config" {
                continue;
            }
            self.set(known, &value).map_err(in_file)?;
        }
        self.validate().map_err(in_file)
    }

    /// Sets one option from its text form, as in the INI file or a flag.
    ///
    /// ```
    /// let mut config = asyncapy::Config::default();
    /// config.set("byteorder", "little")?;
    /// assert!(config.set("byteorder", "middle").is_err());
    /// assert!(config.set("no_such_key", "1").is_err());
    /// # Ok::<(), asyncapy::ConfigError>(())
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(&key) = KEYS.iter().find(|k| **k == key) else {
            return Err(ConfigError::UnknownKey {
                path: "<set>".to_owned(),
                key: key.to_owned(),
                known: KEYS.join(", "),
            });
        };
        self.set_known(key, value)
    }

    /// Checks the values that are valid alone but not in range, or not
    /// together: each option's own check (from the option table), the log
    /// formats, and the options that go together. Reads no file: the TLS
    /// files are read when the server is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_each()?;
        self.log_format()?;
        if !self.proxy_trusted.is_empty() && !self.proxy_protocol {
            return Err(invalid(
                "proxy_trusted",
                &self
                    .proxy_trusted
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                "is only used with proxy_protocol = true",
            ));
        }
        if self.limits_store.is_some() && !cfg!(feature = "redis") {
            return Err(invalid(
                "limits_store",
                self.limits_store.as_deref().unwrap_or_default(),
                "this build has no shared limits (enable the `redis` feature of asyncapy)",
            ));
        }
        if self.metrics_addr.is_some() && !cfg!(feature = "metrics") {
            return Err(invalid(
                "metrics_addr",
                &self.metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
                "this build has no metrics (enable the `metrics` feature of asyncapy)",
            ));
        }
        self.check_tls()
    }

    /// Whether the configuration asks for TLS (`tls_cert` and `tls_key` set).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// Checks that the TLS options go together (their files are read when
    /// the server is built), and that this build has TLS.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let tls_error = |key: &'static str, reason: &str| ConfigError::Tls {
            key,
            reason: reason.to_owned(),
        };
        match (&self.tls_cert, &self.tls_key) {
            (None, None) if self.tls_client_ca.is_some() => Err(tls_error(
                "tls_client_ca",
                "client certificates need TLS: set tls_cert and tls_key too",
            )),
            (None, None) => Ok(()),
            (Some(_), None) => Err(tls_error(
                "tls_key",
                "missing: tls_cert and tls_key go together",
            )),
            (None, Some(_)) => Err(tls_error(
                "tls_cert",
                "missing: tls_cert and tls_key go together",
            )),
            (Some(_), Some(_)) if cfg!(feature = "tls") => Ok(()),
            (Some(_), Some(_)) => Err(tls_error(
                "tls_cert",
                "this build has no TLS support (enable the `tls` feature of asyncapy)",
            )),
        }
    }

    /// The frame layout these options describe.
    pub fn frame_config(&self) -> Result<FrameConfig, ConfigError> {
        FrameConfig::new(self.header_size, self.byteorder, self.max_packet_size).map_err(|_| {
            invalid(
                "header_size",
                &self.header_size.to_string(),
                "must be between 1 and 8",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncaproto::Encoding;

    #[test]
    fn the_original_sample_config_loads_unchanged() {
        let text = "[AsyncAPY]\naddr = 127.0.0.1\nport = 1500\nencoding = json\nheader_size = 4\nbyteorder = big\nbuf = 1024\nlogging_level = 10\ntimeout = 15\n";
        let config = Config::from_ini_str(text).expect("loads");
        assert_eq!(config.port, 1500);
        assert_eq!(config.logging_level, LogLevel::DEBUG);
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.encoding, Encoding::Json);
    }

    #[test]
    fn python_format_strings_load_with_doubled_percent() {
        let text =
            "[AsyncAPY]\nconsole_format = [%%(levelname)s] %%(message)s\ndatefmt = %%H:%%M\n";
        let config = Config::from_ini_str(text).expect("loads");
        assert_eq!(config.console_format, "[%(levelname)s] %(message)s");
        assert_eq!(config.datefmt, "%H:%M");
    }

    #[test]
    fn empty_values_keep_the_default() {
        let config = Config::from_ini_str("[AsyncAPY]\nport =\n").expect("loads");
        assert_eq!(config.port, 8081);
    }

    #[test]
    fn every_bad_value_names_its_key_and_value() {
        for (key, value) in [
            ("port", "70000"),
            ("port", "http"),
            ("buf", "0"),
            ("timeout", "-1"),
            ("timeout", "soon"),
            ("header_size", "0"),
            ("byteorder", "middle"),
            ("logging_level", "LOUD"),
            ("session_limit", "-2"),
            ("encoding", "xml"),
            ("max_packet_size", "1"),
            ("max_connections", "0"),
            ("max_outbox", "0"),
            ("grace_period", "0"),
            ("console_format", "%%(nosuch)s"),
            ("datefmt", "%%Q"),
        ] {
            let err = Config::from_ini_str(&format!("[AsyncAPY]\n{key} = {value}\n"))
                .expect_err(&format!("{key} = {value} must be refused"));
            let text = err.to_string();
            assert!(text.starts_with(&format!("{key}: ")), "{text}");
            let shown = value.replace("%%", "%");
            assert!(text.contains(&format!("{shown:?}")), "{text}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_sections_are_errors() {
        let err = Config::from_ini_str("[AsyncAPY]\nprot = 1\n").unwrap_err();
        assert!(err.to_string().contains("unknown key 'prot'"), "{err}");
        let err = Config::from_ini_str("[Other]\nport = 1\n").unwrap_err();
        assert!(matches!(err, ConfigError::MissingSection { .. }));
    }

    #[test]
    fn tls_options_go_together() {
        let err = Config::from_ini_str("[AsyncAPY]\ntls_cert = cert.pem\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tls_key: missing: tls_cert and tls_key go together"
        );
        let err = Config::from_ini_str("[AsyncAPY]\ntls_key = key.pem\n").unwrap_err();
        assert!(err.to_string().starts_with("tls_cert: missing"), "{err}");
        let err = Config::from_ini_str("[AsyncAPY]\ntls_client_ca = ca.pem\n").unwrap_err();
        assert!(err.to_string().starts_with("tls_client_ca: "), "{err}");
        // Empty values keep the default: no TLS.
        let config = Config::from_ini_str("[AsyncAPY]\ntls_cert =\ntls_key =\n").expect("loads");
        assert!(!config.tls_enabled());
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_the_tls_feature_tls_options_are_refused_clearly() {
        let config = Config {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tls_cert: this build has no TLS support"),
            "{err}"
        );
    }

    #[test]
    fn every_shown_default_is_the_default() {
        for option in OPTIONS {
            let Some(shown) = option
                .default
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
            else {
                // "none", "any": the empty value, which keeps the default.
                assert!(["none", "any"].contains(&option.default), "{option:?}");
                continue;
            };
            let mut config = Config::default();
            config.set(option.key, shown).expect(option.key);
            assert_eq!(config, Config::default(), "{option:?}");
        }
    }

    #[test]
    fn the_keys_are_the_options_in_order() {
        assert_eq!(KEYS, OPTIONS.map(|option| option.key));
        assert_eq!(KEYS[0], "addr");
        assert_eq!(KEYS[KEYS.len() - 1], "config");
        assert!(OPTIONS
            .iter()
            .filter(|option| option.switch)
            .map(|o| o.key)
            .eq(["proxy_protocol", "reuse_port"]));
    }
}
