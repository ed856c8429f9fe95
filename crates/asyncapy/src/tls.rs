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
//! The server side is configured by paths ([`Config::tls_cert`](crate::Config::tls_cert),
//! [`Config::tls_key`](crate::Config::tls_key), [`Config::tls_client_ca`](crate::Config::tls_client_ca), the INI keys of the same
//! names) or by a ready [`ServerTls`] given to [`Server::tls`](crate::Server::tls).
//! The client side by [`TlsOptions`](crate::client::TlsOptions) given to
//! [`ClientConfig::tls`](crate::client::ClientConfig::tls).
//!
//! The server's half lives beside the server (`server/tls.rs`), the clients'
//! beside the clients (`client/tls.rs`), and what both use in `tls_common.rs`;
//! this module gathers their public items.

pub use rustls;
pub use tokio_rustls;

pub use crate::client::tls::{client_config, server_name};
pub use crate::server::tls::ServerTls;
pub use crate::tls_common::{crypto_provider, fingerprint_sha256};
