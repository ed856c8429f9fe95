//! What the server's TLS ([`crate::server`]) and the clients' ([`crate::client`])
//! share: the one crypto provider, PEM loading, certificate fingerprints. It
//! depends on no other module of the crate.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

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
pub(crate) enum Pem<'a> {
    /// A file, read when asked.
    File(&'a Path),
    /// Text in memory.
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

    pub(crate) fn name(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Memory(_) => "the PEM text given".to_owned(),
        }
    }

    /// Every certificate in the PEM text, in order; at least one.
    pub(crate) fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
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
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
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
    pub(crate) fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates()? {
            roots
                .add(cert)
                .map_err(|e| format!("{} holds an unusable CA certificate: {e}", self.name()))?;
        }
        Ok(roots)
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
}
