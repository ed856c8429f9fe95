//! Server configuration: the original AsyncAPY options with their defaults, ours
//! beside them, loading from an AsyncAPY `config.ini`, and validation.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `addr` | `127.0.0.1` | address to bind (an IP address or a host name) |
//! | `port` | `8081` | TCP port (0 picks a free one) |
//! | `buf` | `1024` | bytes reserved for a session's first read; the buffer grows to hold whole packets |
//! | `logging_level` | `20` | Python level number (10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL) or name |
//! | `console_format` | `[%(levelname)s] %(asctime)s %(message)s` | Python `logging` format |
//! | `datefmt` | `%d/%m/%Y %H:%M:%S %p` | strftime format of `%(asctime)s` |
//! | `timeout` | `60` | seconds without a complete packet, or of one handler, before `ERR_TIMED_OUT` |
//! | `header_size` | `4` | bytes of the Content-Length field (1 to 8) |
//! | `byteorder` | `big` | `big` or `little` (Content-Length only) |
//! | `session_limit` | `0` | concurrent sessions per client IP (0: no limit) |
//! | `encoding` | `json` | accepted for compatibility with the original sample; replies always use the session's encoding |
//! | `max_packet_size` | `8388608` | largest Content-Length accepted (`ERR_PACKET_TOO_LARGE` above) |
//! | `max_connections` | `10000` | concurrent connections (`ERR_SERVER_BUSY` above) |
//! | `max_outbox` | `1048576` | bytes a session's unsent replies may hold; a send to a full outbox waits for room (at most `timeout`) |
//! | `workers` | `0` | runtime worker threads (0: one per core) |
//! | `grace_period` | `10` | seconds in-flight packets get to finish at shutdown |
//! | `tls_cert` | none | PEM file of the server's certificate chain (leaf first): serve TLS (feature `tls`) |
//! | `tls_key` | none | PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1); goes with `tls_cert` |
//! | `tls_client_ca` | none | PEM file of the CAs that sign client certificates: when set, every client must present one |
//! | `proxy_protocol` | `false` | every connection starts with a PROXY protocol header (v1 or v2) naming the real client (see [`crate::proxy`]) |
//! | `proxy_trusted` | any | with `proxy_protocol`: the proxies' addresses or ranges (`10.0.0.0/8, ::1`); connections from elsewhere are closed |
//!
//! The TLS files are read and checked by [`Config::validate`] (a missing, unreadable or
//! mismatched file is an error naming its key); relative paths are relative to the
//! working directory.
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use asyncaproto::{ByteOrder, Encoding, FrameConfig};

use crate::filters::IpNet;
use crate::ini::{Ini, IniError};

/// The section of an AsyncAPY INI file that holds the server options.
pub const INI_SECTION: &str = "AsyncAPY";

/// Every key the `[AsyncAPY]` section may hold.
pub const KEYS: [&str; 22] = [
    "addr",
    "port",
    "buf",
    "logging_level",
    "console_format",
    "datefmt",
    "timeout",
    "header_size",
    "byteorder",
    "session_limit",
    "encoding",
    "max_packet_size",
    "max_connections",
    "max_outbox",
    "workers",
    "grace_period",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "proxy_protocol",
    "proxy_trusted",
    "config",
];

/// A Python `logging` level, kept as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// `DEBUG` (10).
    pub const DEBUG: LogLevel = LogLevel(10);
    /// `INFO` (20).
    pub const INFO: LogLevel = LogLevel(20);
    /// `WARNING` (30).
    pub const WARNING: LogLevel = LogLevel(30);
    /// `ERROR` (40).
    pub const ERROR: LogLevel = LogLevel(40);
    /// `CRITICAL` (50).
    pub const CRITICAL: LogLevel = LogLevel(50);

    /// Parses a number (`10`) or a name (`DEBUG`, `info`, `WARN`...).
    pub fn parse(text: &str) -> Option<LogLevel> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u8>() {
            return Some(LogLevel(n));
        }
        match text.to_ascii_uppercase().as_str() {
            "NOTSET" => Some(LogLevel(0)),
            "DEBUG" => Some(LogLevel::DEBUG),
            "INFO" => Some(LogLevel::INFO),
            "WARN" | "WARNING" => Some(LogLevel::WARNING),
            "ERROR" => Some(LogLevel::ERROR),
            "FATAL" | "CRITICAL" => Some(LogLevel::CRITICAL),
            _ => None,
        }
    }

    /// The Python name of the level a record of this number is shown as.
    pub fn name(self) -> &'static str {
        match self.0 {
            0..=10 => "DEBUG",
            11..=20 => "INFO",
            21..=30 => "WARNING",
            31..=40 => "ERROR",
            _ => "CRITICAL",
        }
    }
}

/// Everything a server needs to know before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address to bind: an IP address or a host name.
    pub addr: String,
    /// Port to bind; 0 lets the system pick one.
    pub port: u16,
    /// Bytes reserved for a session's first read.
    pub buf: usize,
    /// Python logging level of the server's log.
    pub logging_level: LogLevel,
    /// Python `logging` format of each log line.
    pub console_format: String,
    /// strftime format of `%(asctime)s`.
    pub datefmt: String,
    /// Idle timeout of a session, and the longest a handler may run.
    pub timeout: Duration,
    /// Size of the Content-Length field, 1 to 8 bytes.
    pub header_size: u8,
    /// Byte order of the Content-Length field.
    pub byteorder: ByteOrder,
    /// Concurrent sessions one client IP may hold; 0 for no limit.
    pub session_limit: usize,
    /// The sample config's `encoding` key: accepted and validated, not used.
    pub encoding: Encoding,
    /// Largest Content-Length accepted.
    pub max_packet_size: u64,
    /// Most concurrent connections.
    pub max_connections: usize,
    /// Most bytes a session's unsent replies may hold. A send to a full
    /// outbox waits until the session has written enough (a single frame
    /// larger than this is taken when the outbox is empty).
    pub max_outbox: usize,
    /// Runtime worker threads; 0 for one per core.
    pub workers: usize,
    /// How long in-flight packets may run on at shutdown.
    pub grace_period: Duration,
    /// PEM file of the certificate chain to serve TLS with (with [`Config::tls_key`]).
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the private key of [`Config::tls_cert`].
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs whose client certificates are accepted: when set,
    /// clients must present a certificate signed by one of them.
    pub tls_client_ca: Option<PathBuf>,
    /// Whether every connection starts with a PROXY protocol header (v1 or
    /// v2) naming the client the proxy speaks for; see [`crate::proxy`].
    pub proxy_protocol: bool,
    /// With [`Config::proxy_protocol`]: the addresses or ranges the proxies
    /// connect from. A connection from anywhere else is closed unread. Empty:
    /// any source (put the server where only the proxy can reach it).
    pub proxy_trusted: Vec<IpNet>,
    /// The INI file this configuration was loaded from, if any.
    pub config: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1".to_owned(),
            port: 8081,
            buf: 1024,
            logging_level: LogLevel::INFO,
            console_format: "[%(levelname)s] %(asctime)s %(message)s".to_owned(),
            datefmt: "%d/%m/%Y %H:%M:%S %p".to_owned(),
            timeout: Duration::from_secs(60),
            header_size: 4,
            byteorder: ByteOrder::Big,
            session_limit: 0,
            encoding: Encoding::Json,
            max_packet_size: asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE,
            max_connections: 10_000,
            max_outbox: 1 << 20,
            workers: 0,
            grace_period: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            proxy_protocol: false,
            proxy_trusted: Vec::new(),
            config: None,
        }
    }
}

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
    /// The error naming the key (`console_format` or `datefmt`) whose value
    /// the log format refused, with the formatter's own reason.
    pub(crate) fn format_error(&self, error: &crate::logging::FormatError) -> ConfigError {
        let (key, value, reason) = match error {
            crate::logging::FormatError::DateFormat(_) => {
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
        match key {
            "addr" => {
                let v = value.trim();
                if v.is_empty() {
                    return Err(invalid(key, value, "must be an IP address or a host name"));
                }
                self.addr = v.to_owned();
            }
            "port" => self.port = parse_int(key, value, "must be a port number from 0 to 65535")?,
            "buf" => self.buf = parse_int(key, value, "must be a positive number of bytes")?,
            "logging_level" => {
                self.logging_level = LogLevel::parse(value).ok_or_else(|| {
                    invalid(
                    key,
                    value,
                    "must be a Python level number (10, 20, 30, 40, 50) or name (DEBUG, INFO, ...)",
                )
                })?
            }
            "console_format" => self.console_format = value.to_owned(),
            "datefmt" => self.datefmt = value.to_owned(),
            "timeout" => self.timeout = parse_seconds(key, value)?,
            "header_size" => {
                self.header_size = parse_int(key, value, "must be between 1 and 8")?;
            }
            "byteorder" => {
                self.byteorder = value
                    .parse()
                    .map_err(|_| invalid(key, value, "must be 'big' or 'little'"))?
            }
            "session_limit" => {
                self.session_limit =
                    parse_int(key, value, "must be a number of sessions (0 for no limit)")?
            }
            "encoding" => {
                self.encoding = value
                    .parse()
                    .map_err(|_| invalid(key, value, "must be 'json' or 'ziproto'"))?
            }
            "max_packet_size" => {
                self.max_packet_size =
                    parse_int(key, value, "must be a number of bytes, at least 2")?
            }
            "max_outbox" => {
                self.max_outbox = parse_int(key, value, "must be a positive number of bytes")?
            }
            "max_connections" => {
                self.max_connections = parse_int(key, value, "must be a positive number")?
            }
            "workers" => {
                self.workers = parse_int(
                    key,
                    value,
                    "must be a number of threads (0 for one per core)",
                )?
            }
            "grace_period" => self.grace_period = parse_seconds(key, value)?,
            "tls_cert" => self.tls_cert = Some(PathBuf::from(value.trim())),
            "tls_key" => self.tls_key = Some(PathBuf::from(value.trim())),
            "tls_client_ca" => self.tls_client_ca = Some(PathBuf::from(value.trim())),
            "proxy_protocol" => {
                self.proxy_protocol = parse_bool(value).ok_or_else(|| {
                    invalid(key, value, "must be true or false (yes/no, on/off, 1/0)")
                })?
            }
            "proxy_trusted" => {
                self.proxy_trusted = value
                    .split([',', ' ', '\t', '\n'])
                    .filter(|entry| !entry.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        invalid(
                            key,
                            value,
                            "must be IP addresses or CIDR ranges, separated by commas",
                        )
                    })?
            }
            "config" => self.config = Some(PathBuf::from(value.trim())),
            _ => unreachable!("every key of KEYS is handled"),
        }
        Ok(())
    }

    /// Checks the values that are valid alone but not in range together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=8).contains(&self.header_size) {
            return Err(invalid(
                "header_size",
                &self.header_size.to_string(),
                "must be between 1 and 8",
            ));
        }
        if self.buf == 0 || self.buf > 64 * 1024 * 1024 {
            return Err(invalid(
                "buf",
                &self.buf.to_string(),
                "must be between 1 and 67108864 bytes",
            ));
        }
        if self.max_packet_size < 2 {
            return Err(invalid(
                "max_packet_size",
                &self.max_packet_size.to_string(),
                "must be a number of bytes, at least 2",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "0", "must be a positive number"));
        }
        if self.max_outbox == 0 {
            return Err(invalid(
                "max_outbox",
                "0",
                "must be a positive number of bytes",
            ));
        }
        if let Err(e) = crate::logging::PythonFormat::new(&self.console_format, &self.datefmt) {
            return Err(self.format_error(&e));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "timeout",
                "0",
                "must be a positive number of seconds",
            ));
        }
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
        self.validate_tls()
    }

    /// Whether the configuration asks for TLS (`tls_cert` and `tls_key` set).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// Checks that the TLS options go together and that their files load.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls_error = |key: &'static str, reason: &str| ConfigError::Tls {
            key,
            reason: reason.to_owned(),
        };
        match (&self.tls_cert, &self.tls_key) {
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(tls_error(
                    "tls_client_ca",
                    "client certificates need TLS: set tls_cert and tls_key too",
                ))
            }
            (None, None) => return Ok(()),
            (Some(_), None) => {
                return Err(tls_error(
                    "tls_key",
                    "missing: tls_cert and tls_key go together",
                ))
            }
            (None, Some(_)) => {
                return Err(tls_error(
                    "tls_cert",
                    "missing: tls_cert and tls_key go together",
                ))
            }
            (Some(_), Some(_)) => {}
        }
        #[cfg(feature = "tls")]
        {
            crate::tls::ServerTls::from_config(self).map(drop)
        }
        #[cfg(not(feature = "tls"))]
        {
            Err(tls_error(
                "tls_cert",
                "this build has no TLS support (enable the `tls` feature of asyncapy)",
            ))
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
    fn level_names_and_numbers() {
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::WARNING));
        assert_eq!(LogLevel::parse("35").map(LogLevel::name), Some("ERROR"));
        assert_eq!(LogLevel::parse("loud"), None);
    }
}
