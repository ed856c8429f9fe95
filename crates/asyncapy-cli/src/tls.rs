//! TLS on the command line: the server's options (`serve`), the clients'
//! (`send`, `bench`), and the throwaway certificate of `serve --tls-self-signed`.

use std::path::PathBuf;

use anyhow::Context as _;
use asyncapy::client::TlsOptions;
use asyncapy::tls::ServerTls;
use asyncapy::Config;

/// The names a self-signed certificate is made for.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// TLS options of `asyncapy serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeTlsArgs {
    /// Serve TLS with the certificate chain of this PEM file (leaf first; with --tls-key).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<String>,
    /// PEM file of the private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<String>,
    /// Require client certificates signed by a CA of this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<String>,
    /// Serve TLS with a throwaway self-signed certificate for localhost,
    /// 127.0.0.1 and ::1, made at start and kept in memory only; its SHA-256
    /// fingerprint is printed. For local use (clients need --tls-insecure).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
}

/// A certificate made at start.
pub(crate) struct SelfSigned {
    /// The server's TLS configuration with it.
    pub(crate) tls: ServerTls,
    /// Its SHA-256 fingerprint, colon-separated hex.
    pub(crate) fingerprint: String,
}

impl SelfSigned {
    /// The lines `serve` prints about it, after "listening on".
    pub(crate) fn describe(&self) -> String {
        format!(
            "TLS: self-signed certificate for {} (made at start, not saved)\nTLS: SHA-256 fingerprint {}",
            SELF_SIGNED_NAMES.join(", "),
            self.fingerprint
        )
    }
}

impl ServeTlsArgs {
    /// Applies the flags over `config` (which holds the configuration file's
    /// values). With `--tls-self-signed`, makes the certificate, takes the
    /// TLS options out of `config`, and returns the server's TLS.
    pub(crate) fn apply(&self, config: &mut Config) -> anyhow::Result<Option<SelfSigned>> {
        for (key, value) in [
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
            ("tls_client_ca", &self.tls_client_ca),
        ] {
            if let Some(value) = value {
                config
                    .set(key, value)
                    .map_err(|e| crate::flags::flag_error(key, &e))?;
            }
        }
        if !self.tls_self_signed {
            return Ok(None);
        }
        config.tls_cert = None;
        config.tls_key = None;
        let client_ca = match config.tls_client_ca.take() {
            Some(path) => Some(
                std::fs::read(&path)
                    .with_context(|| format!("tls_client_ca: cannot read {}", path.display()))?,
            ),
            None => None,
        };
        self_signed(client_ca.as_deref()).map(Some)
    }
}

#[cfg(feature = "self-signed")]
fn self_signed(client_ca: Option<&[u8]>) -> anyhow::Result<SelfSigned> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).context("making the certificate")?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "asyncapy serve --tls-self-signed",
    );
    let key = rcgen::KeyPair::generate().context("making the certificate's key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    let tls = ServerTls::from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        client_ca,
    )?;
    Ok(SelfSigned {
        tls,
        fingerprint: asyncapy::tls::fingerprint_sha256(cert.der()),
    })
}

#[cfg(not(feature = "self-signed"))]
fn self_signed(_client_ca: Option<&[u8]>) -> anyhow::Result<SelfSigned> {
    anyhow::bail!(
        "--tls-self-signed: this asyncapy was built without it (feature `self-signed`); use --tls-cert and --tls-key"
    )
}

/// TLS options of the connecting commands (`send`, `bench`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Connect with TLS, verifying the server's certificate against the
    /// system's roots (or --tls-ca) and the host's name (or --tls-server-name).
    #[arg(long)]
    tls: bool,
    /// Trust the CA certificates of this PEM file instead of the system's (implies --tls).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the host
    /// connected to (implies --tls).
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Accept any server certificate (implies --tls). DEVELOPMENT ONLY: the
    /// traffic is encrypted, but anyone in between can read and change it.
    #[arg(long)]
    tls_insecure: bool,
    /// Present the certificate chain of this PEM file to servers that require
    /// client certificates (with --tls-client-key; implies --tls).
    #[arg(long, value_name = "FILE", requires = "tls_client_key")]
    tls_client_cert: Option<PathBuf>,
    /// PEM file of the private key of --tls-client-cert.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The client's TLS options, when TLS is asked for.
    pub(crate) fn options(&self) -> Option<TlsOptions> {
        let wanted = self.tls
            || self.tls_ca.is_some()
            || self.tls_server_name.is_some()
            || self.tls_insecure
            || self.tls_client_cert.is_some();
        if self.tls_insecure {
            eprintln!(
                "asyncapy: warning: --tls-insecure: the server's certificate is not verified (development only)"
            );
        }
        wanted.then(|| TlsOptions {
            server_name: self.tls_server_name.clone(),
            ca_file: self.tls_ca.clone(),
            insecure: self.tls_insecure,
            client_cert: self.tls_client_cert.clone(),
            client_key: self.tls_client_key.clone(),
        })
    }
}
