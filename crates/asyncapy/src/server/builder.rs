//! [`ServerBuilder`]: the original's `Server(...)` keyword arguments as methods.

use std::path::PathBuf;
use std::time::Duration;

use asyncaproto::ByteOrder;

use crate::config::{Config, ConfigError, LogLevel};
use crate::filters::IpNet;
use crate::server::Server;

/// Builds a [`Server`] option by option; [`ServerBuilder::build`] validates.
///
/// Options apply in call order, so a [`ServerBuilder::config_file`] followed by
/// [`ServerBuilder::port`] keeps the file's other values and overrides its port.
///
/// ```
/// use std::time::Duration;
/// use asyncapy::Server;
///
/// let server = Server::builder()
///     .addr("127.0.0.1")
///     .port(1500)
///     .timeout(Duration::from_secs(15))
///     .session_limit(4)
///     .build()?;
/// assert_eq!(server.config().port, 1500);
///
/// // A bad value is reported by `build`, naming the key.
/// let err = Server::builder().header_size(9).build().err().unwrap();
/// assert!(err.to_string().starts_with("header_size:"));
/// # Ok::<(), asyncapy::ConfigError>(())
/// ```
#[derive(Debug, Default)]
pub struct ServerBuilder {
    config: Config,
    error: Option<ConfigError>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> ServerBuilder {
            self.config.$name = value.into();
            self
        }
    };
}

impl ServerBuilder {
    /// A builder over the default configuration.
    pub fn new() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A builder over `config`.
    pub fn from_config(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            error: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    setter!(
        /// Address to bind (default `127.0.0.1`).
        addr: &str
    );
    setter!(
        /// Port to bind (default 8081; 0 picks a free one).
        port: u16
    );
    setter!(
        /// Bytes reserved for a session's first read (default 1024).
        buf: usize
    );
    setter!(
        /// Python logging level (default INFO).
        logging_level: LogLevel
    );
    setter!(
        /// Python `logging` format of a log line.
        console_format: &str
    );
    setter!(
        /// strftime format of `%(asctime)s`.
        datefmt: &str
    );
    setter!(
        /// Idle and handler timeout (default 60 s).
        timeout: Duration
    );
    setter!(
        /// Size of the Content-Length field, 1 to 8 (default 4).
        header_size: u8
    );
    setter!(
        /// Byte order of the Content-Length field (default big).
        byteorder: ByteOrder
    );
    setter!(
        /// Concurrent sessions per client IP; 0 for no limit (default 0).
        session_limit: usize
    );
    setter!(
        /// Largest Content-Length accepted (default 8 MiB).
        max_packet_size: u64
    );
    setter!(
        /// Most concurrent connections (default 10,000).
        max_connections: usize
    );
    setter!(
        /// Most bytes of unsent replies a session may hold (default 1 MiB); a
        /// send to a full outbox waits for room.
        max_outbox: usize
    );
    setter!(
        /// Runtime worker threads for [`Server::start`]; 0 for one per core.
        workers: usize
    );
    setter!(
        /// How long in-flight packets may run on at shutdown (default 10 s).
        grace_period: Duration
    );

    setter!(
        /// Whether every connection starts with a PROXY protocol header
        /// naming the real client (default off); see [`crate::proxy`].
        proxy_protocol: bool
    );

    /// With [`ServerBuilder::proxy_protocol`]: the addresses or ranges the
    /// proxies connect from; connections from elsewhere are closed unread.
    ///
    /// ```
    /// use asyncapy::filters::IpNet;
    ///
    /// let server = asyncapy::Server::builder()
    ///     .proxy_protocol(true)
    ///     .proxy_trusted(["10.0.0.0/8".parse::<IpNet>()?, "::1".parse()?])
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy_trusted(mut self, ranges: impl IntoIterator<Item = IpNet>) -> ServerBuilder {
        self.config.proxy_trusted = ranges.into_iter().collect();
        self
    }

    /// Serves TLS with the certificate chain (leaf first) and the private key
    /// of these PEM files (feature `tls`). [`ServerBuilder::build`] reads and
    /// checks them.
    ///
    /// ```no_run
    /// let server = asyncapy::Server::builder()
    ///     .tls_cert("cert.pem")
    ///     .tls_key("key.pem")
    ///     .tls_client_ca("clients-ca.pem") // optional: mutual TLS
    ///     .build()?;
    /// # Ok::<(), asyncapy::ConfigError>(())
    /// ```
    pub fn tls_cert(mut self, path: impl Into<PathBuf>) -> ServerBuilder {
        self.config.tls_cert = Some(path.into());
        self
    }

    /// The private key of [`ServerBuilder::tls_cert`] (a PEM file).
    pub fn tls_key(mut self, path: impl Into<PathBuf>) -> ServerBuilder {
        self.config.tls_key = Some(path.into());
        self
    }

    /// Requires client certificates signed by a CA of this PEM file.
    pub fn tls_client_ca(mut self, path: impl Into<PathBuf>) -> ServerBuilder {
        self.config.tls_client_ca = Some(path.into());
        self
    }

    /// Serves TLS with a ready configuration (see [`Server::tls`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> ServerBuilder {
        self.tls = Some(tls);
        self
    }

    /// Applies the `[AsyncAPY]` section of an INI file (the original's `config=`).
    /// An error (unreadable file, bad value) is reported by [`ServerBuilder::build`].
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> ServerBuilder {
        if self.error.is_none() {
            if let Err(e) = self.config.load_ini_file(path.into()) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Validates the options and makes the server.
    pub fn build(self) -> Result<Server, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.config.validate()?;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut server = Server::new(self.config);
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            server.tls(tls);
        }
        Ok(server)
    }
}
