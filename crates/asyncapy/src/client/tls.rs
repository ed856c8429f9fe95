//! The clients' TLS (feature `tls`): the rustls configuration [`TlsOptions`]
//! describe ([`client_config`]), the name a server's certificate is checked
//! against ([`server_name`]), and rustls errors read as [`TlsError`].

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore};

use super::{ClientError, TlsError, TlsOptions};
use crate::tls_common::{crypto_provider, Pem};

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
