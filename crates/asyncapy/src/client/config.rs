//! [`ClientConfig`]: the original client's options.

use std::path::PathBuf;
use std::time::Duration;

use asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE;
use asyncaproto::{ByteOrder, Encoding, FrameCodec, FrameConfig};

use super::ClientError;
use crate::proxy::ProxyHeader;

/// How a client frames, encodes and waits. Defaults: 4-byte big-endian
/// Content-Length, JSON, a 60 s timeout, replies of at most 8 MiB, plain TCP.
///
/// ```
/// use std::time::Duration;
/// use asyncapy::client::ClientConfig;
/// use asyncapy::asyncaproto::{ByteOrder, Encoding};
///
/// let config = ClientConfig::new()
///     .encoding(Encoding::ZiProto)
///     .header_size(2)
///     .byteorder(ByteOrder::Little)
///     .timeout(Duration::from_secs(5));
/// assert_eq!(config.get_encoding(), Encoding::ZiProto);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) header_size: u8,
    pub(crate) byteorder: ByteOrder,
    pub(crate) encoding: Encoding,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_packet_size: u64,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) proxy_header: Option<ProxyHeader>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            header_size: 4,
            byteorder: ByteOrder::Big,
            encoding: Encoding::Json,
            timeout: Some(Duration::from_secs(60)),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            tls: None,
            proxy_header: None,
        }
    }
}

/// TLS settings of a client connection (asyncapy's `tls` feature; without
/// it, a connection with TLS fails with [`ClientError::TlsUnavailable`]).
///
/// By default the server's certificate must chain to one of the system's
/// trusted roots and carry the name of the host connected to.
///
/// ```
/// use asyncapy::client::{ClientConfig, TlsOptions};
///
/// // A server with a certificate from a private CA, reached by IP address.
/// let config = ClientConfig::new().tls(
///     TlsOptions::new()
///         .ca_file("ca.pem")
///         .server_name("api.internal")
///         .client_auth("client.pem", "client-key.pem"), // mutual TLS
/// );
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// The name the server's certificate must carry (default: the host connected to).
    pub server_name: Option<String>,
    /// PEM file of root certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. **For development only**: the connection is
    /// encrypted, but anyone between client and server can read and change it.
    pub insecure: bool,
    /// PEM file of the client's certificate chain, for servers that require
    /// client certificates (mutual TLS); goes with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsOptions {
    /// Verify against the system's roots, by the host's name.
    pub fn new() -> TlsOptions {
        TlsOptions::default()
    }

    /// Check the server's certificate against `name` instead of the host connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsOptions {
        self.server_name = Some(name.into());
        self
    }

    /// Trust the root certificates of this PEM file (only those).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> TlsOptions {
        self.ca_file = Some(path.into());
        self
    }

    /// Accept any certificate: development only (see [`TlsOptions::insecure`]).
    pub fn insecure(mut self, insecure: bool) -> TlsOptions {
        self.insecure = insecure;
        self
    }

    /// Present this certificate chain and key (PEM files) to the server.
    pub fn client_auth(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsOptions {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }
}

impl ClientConfig {
    /// The defaults.
    pub fn new() -> ClientConfig {
        ClientConfig::default()
    }

    /// Size of the Content-Length field, 1 to 8 (must match the server's).
    pub fn header_size(mut self, header_size: u8) -> ClientConfig {
        self.header_size = header_size;
        self
    }

    /// Byte order of the Content-Length field (must match the server's).
    pub fn byteorder(mut self, byteorder: ByteOrder) -> ClientConfig {
        self.byteorder = byteorder;
        self
    }

    /// The encoding of the packets sent (the server answers in the session's
    /// first packet's encoding).
    pub fn encoding(mut self, encoding: Encoding) -> ClientConfig {
        self.encoding = encoding;
        self
    }

    /// The longest a connect, a send or a receive may take; `None` waits forever.
    ///
    /// After a timeout the client drops its connection: a reply that comes
    /// late can never be read as the reply of a later request. Later calls
    /// return [`ClientError::NotConnected`](crate::client::ClientError::NotConnected)
    /// until `connect` is called again. So does every error that leaves the
    /// stream unusable (a close, a reset, a malformed frame from the server).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> ClientConfig {
        self.timeout = timeout.into();
        self
    }

    /// The largest reply accepted (default 8 MiB).
    pub fn max_packet_size(mut self, max: u64) -> ClientConfig {
        self.max_packet_size = max;
        self
    }

    /// Connect with TLS (see [`TlsOptions`]).
    pub fn tls(mut self, options: TlsOptions) -> ClientConfig {
        self.tls = Some(options);
        self
    }

    /// Start every connection with this PROXY protocol header (before TLS),
    /// as a proxy would: for clients that stand in for one, and for testing a
    /// server behind one ([`Config::proxy_protocol`](crate::Config::proxy_protocol)).
    ///
    /// ```
    /// use asyncapy::client::ClientConfig;
    /// use asyncapy::proxy::{ProxyHeader, Version};
    ///
    /// let header = ProxyHeader::proxied("203.0.113.7:51234".parse()?, "10.0.0.1:1500".parse()?);
    /// let config = ClientConfig::new().proxy_header(header.version(Version::V2));
    /// # let _ = config;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy_header(mut self, header: ProxyHeader) -> ClientConfig {
        self.proxy_header = Some(header);
        self
    }

    /// The TLS options, when connections use TLS.
    pub fn get_tls(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The encoding packets are sent in.
    pub fn get_encoding(&self) -> Encoding {
        self.encoding
    }

    /// The timeout of each operation.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn codec(&self) -> Result<FrameCodec, ClientError> {
        FrameConfig::new(self.header_size, self.byteorder, self.max_packet_size)
            .map(FrameCodec::new)
            .map_err(ClientError::Config)
    }
}
