//! [`ServerBuilder`]: the original's `Server(...)` keyword arguments as methods.

use std::path::PathBuf;

use crate::config::{Config, ConfigError};
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
///
/// There is one setter per option of [`Config`] (its table lists them),
/// made from the option table. Behind a proxy, with the ranges it connects
/// from:
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
///
/// Serving TLS with the certificate chain (leaf first) and the private key of
/// PEM files (feature `tls`): [`ServerBuilder::build`] reads and checks them,
/// once, and an error names the option.
///
/// ```no_run
/// let server = asyncapy::Server::builder()
///     .tls_cert("cert.pem")
///     .tls_key("key.pem")
///     .tls_client_ca("clients-ca.pem") // optional: mutual TLS
///     .build()?;
/// # Ok::<(), asyncapy::ConfigError>(())
/// ```
#[derive(Debug, Default)]
pub struct ServerBuilder {
    config: Config,
    error: Option<ConfigError>,
    #[cfg(feature = "tls")]
    tls: Option<crate::server::tls::ServerTls>,
}

/// The setters of the option table (`crate::config::options!`): one per
/// option with a `setter { argument: Type => value }`, documented with the
/// option's docs and default.
macro_rules! builder_setters {
    ($(
        #[doc = $summary:literal]
        $(#[doc = $more:literal])*
        $name:ident : $ty:ty = $default:expr, shown $shown:literal,
            parse $parse:expr,
            $(check $check:expr,)?
            setter $setter:tt;
    )*) => {
        impl ServerBuilder {
            $(builder_setters!(@setter $name $setter [$summary $($more)*] $shown);)*
        }
    };
    (@setter $name:ident {} [$($doc:literal)*] $shown:literal) => {};
    (@setter $name:ident { $arg:ident : $argty:ty => $value:expr } [$($doc:literal)*] $shown:literal) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!("Default: ", $shown, ".")]
        pub fn $name(mut self, $arg: $argty) -> ServerBuilder {
            self.config.$name = $value;
            self
        }
    };
}

crate::config::options!(builder_setters);

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

    /// Serves TLS with a ready configuration (see [`Server::tls`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::server::tls::ServerTls) -> ServerBuilder {
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

    /// Validates the options and makes the server. The TLS files of the
    /// `tls_*` options are read here (unless [`ServerBuilder::tls`] gave a
    /// ready configuration), once: an error names the option.
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
        server.load_tls()?;
        Ok(server)
    }
}
