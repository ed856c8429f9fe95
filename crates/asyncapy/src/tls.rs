//! TLS with rustls (feature `tls`): the server's certificate and its optional
//! demand for client certificates ([`ServerTls`]), the clients' trust
//! ([`client_config`]), and certificate fingerprints ([`fingerprint_sha256`]).
//!
//! One crypto provider, *ring*; TLS 1.3 and 1.2. Certificates and keys are
//! read from PEM (a chain leaf first; a PKCS#8, PKCS#1 or SEC1 key).
//!
//! ```text
//! TcpListener ─accept─▶ permit ─▶ TLS handshake (bounded by `timeout`) ─▶ session limit ─▶ session
//!                                   │ fails / times out / not TLS
//!                                   ▼
//!                                 logged with the peer address, connection dropped
//! ```
//!
//! The server side is configured by paths ([`Config::tls_cert`],
//! [`Config::tls_key`], [`Config::tls_client_ca`], the INI keys of the same
//! names) or by a ready [`ServerTls`] given to [`Server::tls`](crate::Server::tls).
//! The client side by [`TlsOptions`] given to
//! [`ClientConfig::tls`](crate::client::ClientConfig::tls).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use rustls;
pub use tokio_rustls;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore};

use crate::client::{ClientError, TlsError, TlsOptions};
use crate::config::{Config, ConfigError};

/// The one crypto provider: *ring*. Every TLS configuration of this crate
/// is built with it explicitly, so a process-wide default installed by another
/// library does not matter.
///
/// ```
/// let provider = asyncapy::tls::crypto_provider();
/// assert!(!provider.cipher_suites.is_empty());
/// ```
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The SHA-256 fingerprint of a DER certificate, as colon-separated upper-case
/// hex (the form browsers and `openssl x509 -fingerprint -sha256` show).
///
/// ```
/// let fingerprint = asyncapy::tls::fingerprint_sha256(b"");
/// assert!(fingerprint.starts_with("E3:B0:C4:42:98:FC:1C:14"));
/// assert_eq!(fingerprint.len(), 32 * 3 - 1);
/// ```
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = String::with_capacity(digest.as_ref().len() * 3);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// Where PEM text comes from, for reading and for error messages.
#[derive(Clone, Copy)]
enum Pem<'a> {
    File(&'a Path),
    Memory(&'a [u8]),
}

impl Pem<'_> {
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        match self {
            Pem::File(path) => std::fs::read(path)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Pem::Memory(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }

    fn name(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Memory(_) => "the PEM text given".to_owned(),
        }
    }

    /// Every certificate in the PEM text, in order; at least one.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let bytes = self.bytes()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not valid PEM: {e}", self.name()))?;
        if certs.is_empty() {
            return Err(format!(
                "{} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
                self.name()
            ));
        }
        Ok(certs)
    }

    /// The first private key in the PEM text.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
        let bytes = self.bytes()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => format!(
                "{} holds no private key (expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
                self.name()
            ),
            e => format!("{} is not a valid PEM private key: {e}", self.name()),
        })
    }

    /// The certificates as a root store.
    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates()? {
            roots
                .add(cert)
                .map_err(|e| format!("{} holds an unusable CA certificate: {e}", self.name()))?;
        }
        Ok(roots)
    }
}

/// A server's TLS configuration, ready to accept connections: its certificate
/// chain and key, and, when set, the CAs whose client certificates it requires.
///
/// Build it from PEM files or PEM text, or wrap a `rustls::ServerConfig` of your
/// own; give it to [`Server::tls`](crate::Server::tls) or
/// [`ServerBuilder::tls`](crate::ServerBuilder::tls). A server configured
/// through [`Config::tls_cert`] and [`Config::tls_key`] builds its own.
///
/// ```
/// use asyncapy::tls::ServerTls;
///
/// // A missing file is an error naming the option it came from.
/// let err = ServerTls::from_pem_files("/no/such/cert.pem", "/no/such/key.pem", None).unwrap_err();
/// assert!(err.to_string().starts_with("tls_cert: cannot read /no/such/cert.pem"));
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    requires_client_certificates: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "requires_client_certificates",
                &self.requires_client_certificates,
            )
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate chain (leaf first) and its private key from PEM
    /// files; with `client_ca`, clients must present a certificate signed by
    /// one of the CAs in that PEM file.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: Option<&Path>,
    ) -> Result<ServerTls, ConfigError> {
        ServerTls::build(
            Pem::File(cert_chain.as_ref()),
            Pem::File(key.as_ref()),
            client_ca.map(Pem::File),
        )
    }

    /// The same from PEM text in memory (a certificate made at start, a secret
    /// store's value...).
    pub fn from_pem(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<ServerTls, ConfigError> {
        ServerTls::build(
            Pem::Memory(cert_chain),
            Pem::Memory(key),
            client_ca.map(Pem::Memory),
        )
    }

    /// Wraps a rustls configuration made by hand (ALPN, certificate resolvers
    /// by SNI, session tickets...).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls {
            config,
            requires_client_certificates: false,
        }
    }

    /// The TLS configuration [`Config`]'s `tls_*` options describe, if any.
    pub fn from_config(config: &Config) -> Result<Option<ServerTls>, ConfigError> {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                ServerTls::from_pem_files(cert, key, config.tls_client_ca.as_deref()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// Whether clients must present a certificate (built with a client CA).
    pub fn requires_client_certificates(&self) -> bool {
        self.requires_client_certificates
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    fn build(
        cert_chain: Pem<'_>,
        key: Pem<'_>,
        client_ca: Option<Pem<'_>>,
    ) -> Result<ServerTls, ConfigError> {
        let error = |key: &'static str| move |reason: String| ConfigError::Tls { key, reason };
        let chain = cert_chain.certificates().map_err(error("tls_cert"))?;
        let private_key = key.private_key().map_err(error("tls_key"))?;
        let provider = crypto_provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| error("tls_cert")(e.to_string()))?;
        let builder = match client_ca {
            Some(ca) => {
                let roots = ca.roots().map_err(error("tls_client_ca"))?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| error("tls_client_ca")(format!("{}: {e}", ca.name())))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, private_key).map_err(|e| {
            error("tls_key")(format!(
                "{} cannot be used with the certificate of {}: {e}",
                key.name(),
                cert_chain.name()
            ))
        })?;
        Ok(ServerTls {
            config: Arc::new(config),
            requires_client_certificates: client_ca.is_some(),
        })
    }
}

/// The system's root certificates, loaded once.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "the system has no trusted root certificates{why}: give a CA file"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The rustls client configuration [`TlsOptions`] describe: the roots of
/// `ca_file`, else the system's; any certificate at all with `insecure`; the
/// client certificate and key when given (mutual TLS).
///
/// The clients build it once per client; a program that opens many
/// connections (a load generator) builds it once and shares it.
///
/// ```
/// use asyncapy::client::TlsOptions;
///
/// let config = asyncapy::tls::client_config(&TlsOptions::new().insecure(true))?;
/// assert!(config.alpn_protocols.is_empty());
/// # Ok::<(), asyncapy::client::ClientError>(())
/// ```
pub fn client_config(options: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let setup = |reason: String| ClientError::Tls(TlsError::Setup(reason));
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?;
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate { provider }))
    } else {
        let roots = match &options.ca_file {
            Some(path) => Arc::new(
                Pem::File(path)
                    .roots()
                    .map_err(|e| setup(format!("CA file: {e}")))?,
            ),
            None => system_roots().map_err(setup)?,
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = Pem::File(cert)
                .certificates()
                .map_err(|e| setup(format!("client certificate: {e}")))?;
            let key_der = Pem::File(key)
                .private_key()
                .map_err(|e| setup(format!("client key: {e}")))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                setup(format!(
                    "client key {} does not go with the certificate of {}: {e}",
                    key.display(),
                    cert.display()
                ))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(setup(
                "a client certificate and its key go together: give both".to_owned(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// The name the server's certificate is checked against: `server_name` when
/// set, else the host connected to (an IP address is checked as one).
///
/// ```
/// use asyncapy::client::TlsOptions;
/// use asyncapy::tls::{rustls::pki_types::ServerName, server_name};
///
/// let by_ip = server_name(&TlsOptions::new(), "127.0.0.1")?;
/// assert!(matches!(by_ip, ServerName::IpAddress(_)));
/// let named = server_name(&TlsOptions::new().server_name("api.internal"), "10.1.2.3")?;
/// assert_eq!(named.to_str(), "api.internal");
/// # Ok::<(), asyncapy::client::ClientError>(())
/// ```
pub fn server_name(options: &TlsOptions, host: &str) -> Result<ServerName<'static>, ClientError> {
    let name = options.server_name.as_deref().unwrap_or(host);
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| {
        ClientError::Tls(TlsError::Setup(format!(
            "{name:?} is not a valid server name (a DNS name or an IP address)"
        )))
    })
}

/// Accepts every server certificate: for development only (the connection is
/// encrypted, but anyone in the middle can read and change it). The handshake
/// signatures are still checked, so the server does hold the key of the
/// certificate it shows.
#[derive(Debug)]
struct AcceptAnyServerCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a rustls error means to a client.
pub(crate) fn classify(error: &rustls::Error) -> TlsError {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsError::CertificateExpired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsError::CertificateNotYetValid
            }
            CertificateError::UnknownIssuer => TlsError::UnknownIssuer,
            CertificateError::NotValidForName => TlsError::WrongName {
                name: None,
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => TlsError::WrongName {
                name: Some(expected.to_str().into_owned()),
                presented: presented.clone(),
            },
            other => TlsError::BadCertificate(format!("{other:?}")),
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsError::ClientCertificateRequired
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) => TlsError::ClientCertificateRefused(format!("{alert:?} alert")),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsError::NotTls(error.to_string())
        }
        other => TlsError::Handshake(other.to_string()),
    }
}

/// The TLS error inside an I/O error from a TLS stream, if there is one.
pub(crate) fn from_io(error: &io::Error) -> Option<TlsError> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(classify)
}

/// The error of a handshake that failed with `error`.
pub(crate) fn handshake_error(
    error: io::Error,
    timeout: Option<std::time::Duration>,
) -> ClientError {
    if let Some(tls) = from_io(&error) {
        return ClientError::Tls(tls);
    }
    match error.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ClientError::Tls(TlsError::Handshake(
            "the server closed the connection during the handshake (is it serving TLS?)".to_owned(),
        )),
        _ => ClientError::io(error, timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_colon_separated_upper_hex() {
        let fp = fingerprint_sha256(b"abc");
        assert_eq!(
            fp,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn certificate_errors_read_clearly() {
        let expired = classify(&rustls::Error::InvalidCertificate(
            CertificateError::Expired,
        ));
        assert_eq!(expired, TlsError::CertificateExpired);
        let refused = classify(&rustls::Error::AlertReceived(AlertDescription::UnknownCA));
        assert!(matches!(refused, TlsError::ClientCertificateRefused(_)));
        let name = classify(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("example.com").unwrap(),
                presented: vec!["DnsName(\"localhost\")".to_owned()],
            },
        ));
        assert!(name.to_string().contains("\"example.com\""), "{name}");
    }

    #[test]
    fn pem_without_certificates_or_keys_is_refused_by_key() {
        let err = ServerTls::from_pem(b"nothing here", b"", None).unwrap_err();
        assert!(err.to_string().starts_with("tls_cert: "), "{err}");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }

    #[test]
    fn server_names_default_to_the_host() {
        let options = TlsOptions::new();
        assert!(matches!(
            server_name(&options, "127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name(&options, "[::1]"),
            Ok(ServerName::IpAddress(_))
        ));
        let named = TlsOptions::new().server_name("localhost");
        assert!(matches!(
            server_name(&named, "127.0.0.1"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name(&TlsOptions::new(), "not a name!").is_err());
    }
}
