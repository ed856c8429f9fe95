//! The server's TLS (feature `tls`): [`ServerTls`], from the `tls_*` options,
//! PEM text, or a rustls configuration. The listener performs the handshake.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;

use crate::config::{Config, ConfigError};
use crate::tls_common::{crypto_provider, Pem};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_or_keys_is_refused_by_key() {
        let err = ServerTls::from_pem(b"nothing here", b"", None).unwrap_err();
        assert!(err.to_string().starts_with("tls_cert: "), "{err}");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
