//! TLS over real sockets: both clients against a TLS server, mutual TLS,
//! certificates that must be refused, handshakes that never finish, plain-TCP
//! clients on a TLS port, and the original Python client's `ssl.wrap_socket`.
//!
//! Every certificate and key is made here, by rcgen, into a scratch folder
//! under the target directory: no private key is committed.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::client::{
    AsyncClient, BlockingClient, ClientConfig, ClientError, TlsError, TlsOptions,
};
use asyncapy::tls::ServerTls;
use asyncapy::{Config, RunningServer, Server, ServerBuilder, ServerHandle};
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// Certificates

/// A fresh scratch folder for one test's PEM files.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "tls-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A certificate authority that signs test certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM files.
struct Identity {
    cert: PathBuf,
    key: PathBuf,
}

/// When a certificate is valid.
#[derive(Clone, Copy)]
enum Validity {
    Now,
    Expired,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// Writes the CA's certificate into `dir`.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// Signs a certificate for `names` (DNS names or IP addresses), for a
    /// server or a client, and writes it and its key into `dir`.
    fn sign(
        &self,
        dir: &Path,
        file: &str,
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("test {file}"));
        params.extended_key_usages = vec![purpose];
        if let Validity::Expired = validity {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let identity = Identity {
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}-key.pem")),
        };
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        std::fs::write(&identity.key, key.serialize_pem()).unwrap();
        identity
    }
}

/// One test's PKI: a CA, a server certificate for localhost and 127.0.0.1
/// signed by it, and a scratch folder for more.
struct Pki {
    dir: PathBuf,
    ca: Ca,
    ca_file: PathBuf,
    server: Identity,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = scratch(name);
        let ca = Ca::new("asyncapy test CA");
        let ca_file = ca.write(&dir, "ca");
        let server = ca.sign(
            &dir,
            "server",
            &["localhost", "127.0.0.1", "::1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            Validity::Now,
        );
        Pki {
            dir,
            ca,
            ca_file,
            server,
        }
    }

    fn server_tls(&self) -> ServerTls {
        ServerTls::from_pem_files(&self.server.cert, &self.server.key, None).unwrap()
    }

    /// A client configuration that trusts this PKI's CA.
    fn client(&self) -> ClientConfig {
        ClientConfig::new()
            .timeout(PATIENCE)
            .tls(TlsOptions::new().ca_file(&self.ca_file))
    }

    fn client_with(&self, options: TlsOptions) -> ClientConfig {
        ClientConfig::new().timeout(PATIENCE).tls(options)
    }
}

// ---------------------------------------------------------------------------
// Helpers

async fn start_tls(config: Config, tls: ServerTls) -> RunningServer {
    let mut server = Server::new(config);
    server.register_handler(echo);
    server.tls(tls);
    server.bind().await.unwrap()
}

fn sample() -> asyncapy::asyncaproto::Map {
    map(&[
        ("foo", Value::from("bar")),
        ("n", Value::from(42)),
        ("text", Value::from("h\u{e9}llo \u{2603}")),
    ])
}

/// Waits (bounded) until `done` holds: for state the server reaches on its
/// own tasks, after what the test observed on its socket.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn no_connections_left(handle: &ServerHandle) {
    eventually("every connection closed", || handle.connection_count() == 0).await;
    assert_eq!(handle.session_count(), 0);
}

/// The error of a connection that must fail: at connect (the handshake), or,
/// with TLS 1.3, where a server refuses a client certificate after the
/// client's side of the handshake is done, at the first read.
async fn failure(port: u16, config: ClientConfig) -> ClientError {
    let mut client = AsyncClient::new(config);
    if let Err(e) = client.connect("127.0.0.1", port).await {
        return e;
    }
    client
        .receive()
        .await
        .expect_err("the connection must fail")
}

/// An echo over a fresh TLS connection: the server still serves.
async fn assert_tls_echo(port: u16, config: ClientConfig) {
    let mut client = AsyncClient::connect_to("127.0.0.1", port, config)
        .await
        .unwrap();
    assert_eq!(client.request(&sample()).await.unwrap(), sample());
    client.disconnect().await.unwrap();
}

// ---------------------------------------------------------------------------
// Echo with both clients

#[tokio::test]
async fn the_async_client_echoes_over_tls() {
    let pki = Pki::new("async-echo");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port();

    // By IP address (the certificate carries 127.0.0.1)...
    let mut client = AsyncClient::connect_to("127.0.0.1", port, pki.client())
        .await
        .unwrap();
    assert_eq!(client.request(&sample()).await.unwrap(), sample());
    // ...pipelined...
    for n in 0..20 {
        client.send(&map(&[("n", Value::from(n))])).await.unwrap();
    }
    for n in 0..20 {
        assert_eq!(client.receive().await.unwrap()["n"], n);
    }
    // ...and a packet far larger than one TLS record (16 KiB).
    let big = map(&[("data", Value::from("x".repeat(1 << 20)))]);
    assert_eq!(client.request(&big).await.unwrap(), big);
    client.disconnect().await.unwrap();

    // By name, in ZiProto.
    let mut client =
        AsyncClient::connect_to("localhost", port, pki.client().encoding(Encoding::ZiProto))
            .await
            .unwrap();
    client.send(&sample()).await.unwrap();
    let reply = client.receive_packet().await.unwrap();
    assert_eq!(reply.encoding(), Encoding::ZiProto);
    assert_eq!(*reply, sample());
    client.disconnect().await.unwrap();

    no_connections_left(&running.handle()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_echoes_over_tls() {
    let pki = Pki::new("blocking-echo");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port();
    let config = pki.client();
    tokio::task::spawn_blocking(move || {
        let mut client = BlockingClient::connect_to("127.0.0.1", port, config).unwrap();
        assert_eq!(client.request(sample()).unwrap(), sample());
        client.send(r#"{"a": 1}"#).unwrap();
        client.send(r#"{"a": 2}"#).unwrap();
        assert_eq!(client.receive().unwrap()["a"], 1);
        assert_eq!(client.receive().unwrap()["a"], 2);
        let big = map(&[("data", Value::from("y".repeat(300_000)))]);
        assert_eq!(client.request(&big).unwrap(), big);
        client.disconnect().unwrap();
    })
    .await
    .unwrap();
    no_connections_left(&running.handle()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_reports_tls_failures_too() {
    let pki = Pki::new("blocking-fail");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port();
    let other = Ca::new("another CA").write(&pki.dir, "other-ca");
    let config = pki.client_with(TlsOptions::new().ca_file(other));
    let err = tokio::task::spawn_blocking(move || {
        BlockingClient::connect_to("127.0.0.1", port, config)
            .err()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        matches!(err, ClientError::Tls(TlsError::UnknownIssuer)),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------
// Configuration: paths in Config / the INI file / the builder

#[tokio::test]
async fn tls_paths_in_the_configuration_serve_tls() {
    let pki = Pki::new("config");
    let ini = format!(
        "[AsyncAPY]\nport = 0\ntls_cert = {}\ntls_key = {}\n",
        pki.server.cert.display(),
        pki.server.key.display()
    );
    let config = Config::from_ini_str(&ini).unwrap();
    assert_eq!(config.tls_cert.as_deref(), Some(pki.server.cert.as_path()));
    let running = start_echo(config).await;
    assert_tls_echo(running.local_addr().port(), pki.client()).await;

    let mut server = Server::builder()
        .port(0)
        .tls_cert(&pki.server.cert)
        .tls_key(&pki.server.key)
        .build()
        .unwrap();
    server.register_handler(echo);
    let running = server.bind().await.unwrap();
    assert_tls_echo(running.local_addr().port(), pki.client()).await;
}

#[test]
fn unusable_tls_options_fail_at_start_naming_the_key() {
    let pki = Pki::new("bad-config");
    let other = pki.ca.sign(
        &pki.dir,
        "other",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        Validity::Now,
    );
    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all").unwrap();
    let missing = pki.dir.join("missing.pem");
    let cert = &pki.server.cert;
    let key = &pki.server.key;
    let cases: Vec<(Config, &str, &str)> = vec![
        (
            Config {
                tls_cert: Some(cert.clone()),
                ..test_config()
            },
            "tls_key: ",
            "go together",
        ),
        (
            Config {
                tls_key: Some(key.clone()),
                ..test_config()
            },
            "tls_cert: ",
            "go together",
        ),
        (
            Config {
                tls_cert: Some(missing.clone()),
                tls_key: Some(key.clone()),
                ..test_config()
            },
            "tls_cert: ",
            "cannot read",
        ),
        (
            Config {
                tls_cert: Some(garbage.clone()),
                tls_key: Some(key.clone()),
                ..test_config()
            },
            "tls_cert: ",
            "holds no certificate",
        ),
        (
            Config {
                tls_cert: Some(cert.clone()),
                tls_key: Some(garbage.clone()),
                ..test_config()
            },
            "tls_key: ",
            "holds no private key",
        ),
        (
            Config {
                tls_cert: Some(cert.clone()),
                tls_key: Some(other.key.clone()),
                ..test_config()
            },
            "tls_key: ",
            "cannot be used with the certificate",
        ),
        (
            Config {
                tls_cert: Some(cert.clone()),
                tls_key: Some(key.clone()),
                tls_client_ca: Some(garbage.clone()),
                ..test_config()
            },
            "tls_client_ca: ",
            "holds no certificate",
        ),
        (
            Config {
                tls_client_ca: Some(pki.ca_file.clone()),
                ..test_config()
            },
            "tls_client_ca: ",
            "need TLS",
        ),
    ];
    for (config, prefix, reason) in cases {
        // The files are read when the server is built (validate reads none).
        let Err(err) = ServerBuilder::from_config(config).build() else {
            panic!("{prefix}...{reason}: the server was built");
        };
        let err = err.to_string();
        assert!(
            err.starts_with(prefix) && err.contains(reason),
            "{prefix}...{reason}: {err}"
        );
    }
    // The INI file's values are checked when it loads; its TLS files are
    // read when the server is built: from the builder, or at bind.
    let ini = format!(
        "[AsyncAPY]\ntls_cert = {}\ntls_key = {}\n",
        missing.display(),
        key.display()
    );
    let config = Config::from_ini_str(&ini).expect("validate() reads no file");
    let Err(err) = ServerBuilder::from_config(config.clone()).build() else {
        panic!("built with a missing certificate");
    };
    assert!(
        err.to_string().starts_with("tls_cert: cannot read"),
        "{err}"
    );
    let mut server = Server::new(config);
    server.register_handler(echo);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Err(err) = runtime.block_on(server.bind()) else {
        panic!("bound with a missing certificate");
    };
    assert!(
        err.to_string().starts_with("tls_cert: cannot read"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Mutual TLS

/// A server that requires client certificates from `clients_ca`, and a
/// client certificate signed by that CA.
struct Mutual {
    pki: Pki,
    client: Identity,
    running: RunningServer,
}

async fn mutual(name: &str) -> Mutual {
    let pki = Pki::new(name);
    let clients_ca = Ca::new("asyncapy clients CA");
    let clients_ca_file = clients_ca.write(&pki.dir, "clients-ca");
    let client = clients_ca.sign(
        &pki.dir,
        "client",
        &["client.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
        Validity::Now,
    );
    let tls = ServerTls::from_pem_files(&pki.server.cert, &pki.server.key, Some(&clients_ca_file))
        .unwrap();
    assert!(tls.requires_client_certificates());
    let running = start_tls(test_config(), tls).await;
    Mutual {
        pki,
        client,
        running,
    }
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_certificate_from_the_ca() {
    let m = mutual("mtls-ok").await;
    let options = TlsOptions::new()
        .ca_file(&m.pki.ca_file)
        .client_auth(&m.client.cert, &m.client.key);
    let port = m.running.local_addr().port();
    assert_tls_echo(port, m.pki.client_with(options.clone())).await;

    let config = m.pki.client_with(options);
    tokio::task::spawn_blocking(move || {
        let mut client = BlockingClient::connect_to("127.0.0.1", port, config).unwrap();
        assert_eq!(client.request(sample()).unwrap(), sample());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let m = mutual("mtls-none").await;
    let port = m.running.local_addr().port();
    let err = failure(port, m.pki.client()).await;
    assert!(
        matches!(err, ClientError::Tls(TlsError::ClientCertificateRequired)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "TLS: the server requires a client certificate"
    );
    no_connections_left(&m.running.handle()).await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let m = mutual("mtls-other").await;
    let stranger = Ca::new("not the clients CA").sign(
        &m.pki.dir,
        "stranger",
        &["client.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
        Validity::Now,
    );
    let port = m.running.local_addr().port();
    let options = TlsOptions::new()
        .ca_file(&m.pki.ca_file)
        .client_auth(&stranger.cert, &stranger.key);
    let err = failure(port, m.pki.client_with(options)).await;
    assert!(
        matches!(err, ClientError::Tls(TlsError::ClientCertificateRefused(_))),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("TLS: the server refused the client certificate"),
        "{err}"
    );
    // Refusals hold nothing; the right certificate still gets in.
    no_connections_left(&m.running.handle()).await;
    let options = TlsOptions::new()
        .ca_file(&m.pki.ca_file)
        .client_auth(&m.client.cert, &m.client.key);
    assert_tls_echo(port, m.pki.client_with(options)).await;
}

// ---------------------------------------------------------------------------
// Server certificates the client must refuse

#[tokio::test]
async fn an_expired_server_certificate_is_a_clear_error() {
    let pki = Pki::new("expired");
    let expired = pki.ca.sign(
        &pki.dir,
        "expired",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        Validity::Expired,
    );
    let tls = ServerTls::from_pem_files(&expired.cert, &expired.key, None).unwrap();
    let running = start_tls(test_config(), tls).await;
    let err = failure(running.local_addr().port(), pki.client()).await;
    assert!(
        matches!(err, ClientError::Tls(TlsError::CertificateExpired)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "TLS: the server's certificate has expired");
    no_connections_left(&running.handle()).await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_clear_error() {
    let pki = Pki::new("wrong-name");
    let elsewhere = pki.ca.sign(
        &pki.dir,
        "elsewhere",
        &["elsewhere.example"],
        ExtendedKeyUsagePurpose::ServerAuth,
        Validity::Now,
    );
    let tls = ServerTls::from_pem_files(&elsewhere.cert, &elsewhere.key, None).unwrap();
    let running = start_tls(test_config(), tls).await;
    let port = running.local_addr().port();
    let err = failure(port, pki.client()).await;
    let ClientError::Tls(TlsError::WrongName { name, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(name.as_deref(), Some("127.0.0.1"));
    let text = err.to_string();
    assert!(
        text.starts_with("TLS: the server's certificate is not valid for \"127.0.0.1\""),
        "{text}"
    );
    assert!(text.contains("elsewhere.example"), "{text}");

    // The name the certificate carries, given explicitly, is accepted.
    let options = TlsOptions::new()
        .ca_file(&pki.ca_file)
        .server_name("elsewhere.example");
    assert_tls_echo(port, pki.client_with(options)).await;
}

#[tokio::test]
async fn an_unknown_issuer_is_a_clear_error_and_insecure_mode_accepts_it() {
    let pki = Pki::new("unknown-issuer");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port();
    let other = Ca::new("another CA").write(&pki.dir, "other-ca");
    let err = failure(port, pki.client_with(TlsOptions::new().ca_file(other))).await;
    assert!(
        matches!(err, ClientError::Tls(TlsError::UnknownIssuer)),
        "{err:?}"
    );
    assert!(err.to_string().contains("unknown issuer"), "{err}");

    // Development only: any certificate, any name.
    let insecure = TlsOptions::new()
        .insecure(true)
        .server_name("whatever.example");
    assert_tls_echo(port, pki.client_with(insecure)).await;
}

#[tokio::test]
async fn unusable_client_options_are_setup_errors() {
    let pki = Pki::new("client-setup");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port();
    let missing = pki.dir.join("missing.pem");
    for (options, expected) in [
        (TlsOptions::new().ca_file(&missing), "cannot read"),
        (
            TlsOptions {
                client_cert: Some(pki.server.cert.clone()),
                ..TlsOptions::new().ca_file(&pki.ca_file)
            },
            "go together",
        ),
        (
            TlsOptions::new()
                .ca_file(&pki.ca_file)
                .server_name("not a name!"),
            "not a valid server name",
        ),
    ] {
        let err = failure(port, pki.client_with(options)).await;
        assert!(
            matches!(&err, ClientError::Tls(TlsError::Setup(m)) if m.contains(expected)),
            "{expected}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Peers that do not complete a handshake

#[tokio::test]
async fn a_handshake_that_never_completes_is_dropped_after_the_timeout() {
    let pki = Pki::new("stalled");
    let timeout = Duration::from_millis(300);
    let running = start_tls(
        Config {
            timeout,
            ..test_config()
        },
        pki.server_tls(),
    )
    .await;
    let handle = running.handle();
    let started = Instant::now();
    // Connect, send nothing.
    let mut stalled = TcpStream::connect(running.local_addr()).await.unwrap();
    // The handshake holds a connection, not a session.
    eventually("the connection is accepted", || {
        handle.connection_count() == 1
    })
    .await;
    assert_eq!(handle.session_count(), 0);

    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, stalled.read(&mut buf))
        .await
        .expect("the server drops the connection in time");
    assert_eq!(read.unwrap_or(0), 0, "nothing is sent, the connection ends");
    let waited = started.elapsed();
    assert!(
        waited >= timeout,
        "dropped after {waited:?}, before the timeout"
    );
    no_connections_left(&handle).await;

    // A half-done handshake (a ClientHello cut short) ends the same way.
    let mut half = TcpStream::connect(running.local_addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let read = tokio::time::timeout(PATIENCE, half.read(&mut buf))
        .await
        .expect("the server drops the connection in time");
    assert_eq!(read.unwrap_or(0), 0);
    no_connections_left(&handle).await;

    // Meanwhile and after, the server serves.
    assert_tls_echo(running.local_addr().port(), pki.client()).await;
}

#[tokio::test]
async fn a_shutdown_does_not_wait_for_handshakes() {
    let pki = Pki::new("shutdown");
    let running = start_tls(
        Config {
            timeout: Duration::from_secs(60),
            grace_period: Duration::from_secs(30),
            ..test_config()
        },
        pki.server_tls(),
    )
    .await;
    let handle = running.handle();
    let _stalled = TcpStream::connect(running.local_addr()).await.unwrap();
    eventually("the connection is accepted", || {
        handle.connection_count() == 1
    })
    .await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(5), running.wait())
        .await
        .expect("the server stops without waiting for the handshake")
        .unwrap();
    assert_eq!(handle.connection_count(), 0);
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_is_closed_promptly() {
    let pki = Pki::new("plain-on-tls");
    // A long timeout: the close must come from the protocol error, not from it.
    let running = start_tls(
        Config {
            timeout: Duration::from_secs(60),
            ..test_config()
        },
        pki.server_tls(),
    )
    .await;
    let addr = running.local_addr();
    let started = Instant::now();

    let mut raw = RawClient::connect(addr).await;
    raw.send(Encoding::Json, &sample()).await;
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match raw.stream.read_buf(&mut got).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open");
    // At most a TLS alert came back, never an AsyncAProto reply.
    assert!(got.len() <= 7, "{got:?}");

    // Our own client, without TLS, gets a clear error at once.
    let mut plain = AsyncClient::connect_to("127.0.0.1", addr.port(), ClientConfig::new())
        .await
        .unwrap();
    let err = plain.request(&sample()).await.unwrap_err();
    assert!(matches!(err, ClientError::TlsExpected), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the server answered with TLS: connect with TLS"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    no_connections_left(&running.handle()).await;
    assert_tls_echo(addr.port(), pki.client()).await;
}

#[tokio::test]
async fn a_tls_client_on_a_plain_port_gets_a_clear_error() {
    let pki = Pki::new("tls-on-plain");
    let running = start_echo(test_config()).await;
    let err = failure(running.local_addr().port(), pki.client()).await;
    assert!(
        matches!(
            err,
            ClientError::Tls(TlsError::NotTls(_) | TlsError::Handshake(_))
        ),
        "{err:?}"
    );
    assert_still_serving(running.local_addr()).await;
}

// ---------------------------------------------------------------------------
// Admission refusals reach TLS clients over TLS

#[tokio::test]
async fn refusals_at_admission_are_sent_over_tls() {
    let pki = Pki::new("admission");
    let running = start_tls(
        Config {
            session_limit: 1,
            ..test_config()
        },
        pki.server_tls(),
    )
    .await;
    let port = running.local_addr().port();
    let mut first = AsyncClient::connect_to("127.0.0.1", port, pki.client())
        .await
        .unwrap();
    assert_eq!(first.request(&sample()).await.unwrap(), sample());
    let err = failure(port, pki.client()).await;
    assert_eq!(
        err.failure_code(),
        Some(ErrorCode::SessionLimitReached),
        "{err:?}"
    );
    first.disconnect().await.unwrap();

    let running = start_tls(
        Config {
            max_connections: 1,
            ..test_config()
        },
        pki.server_tls(),
    )
    .await;
    let port = running.local_addr().port();
    let mut first = AsyncClient::connect_to("127.0.0.1", port, pki.client())
        .await
        .unwrap();
    assert_eq!(first.request(&sample()).await.unwrap(), sample());
    let err = failure(port, pki.client()).await;
    assert_eq!(err.failure_code(), Some(ErrorCode::ServerBusy), "{err:?}");
}

// ---------------------------------------------------------------------------
// The original Python client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_python_client_with_tls_talks_to_our_server() {
    let pki = Pki::new("python");
    let running = start_tls(test_config(), pki.server_tls()).await;
    let port = running.local_addr().port().to_string();
    let script_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .current_dir(script_dir)
            .args(["tls_client.py", "--port", &port])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    no_connections_left(&running.handle()).await;
}

// ---------------------------------------------------------------------------
// TLS behind a proxy: the PROXY header comes first, in the clear

/// A TLS server behind a proxy that answers with the peer it sees.
async fn start_tls_whoami(pki: &Pki) -> RunningServer {
    let mut server = Server::new(Config {
        proxy_protocol: true,
        ..test_config()
    });
    server.register_handler(
        |client: asyncapy::Client, _packet: asyncapy::Packet| async move {
            let mut reply = asyncapy::asyncaproto::Map::new();
            reply.insert("peer", Value::from(client.peer_addr().to_string()));
            client.send(&reply).await
        },
    );
    server.tls(pki.server_tls());
    server.bind().await.unwrap()
}

#[tokio::test]
async fn tls_behind_a_proxy_sees_the_client_the_header_names() {
    use asyncapy::proxy::{ProxyHeader, Version};
    let pki = Pki::new("proxy");
    let running = start_tls_whoami(&pki).await;
    let header = ProxyHeader::proxied(
        "203.0.113.7:51234".parse().unwrap(),
        "192.0.2.1:1500".parse().unwrap(),
    );
    for version in [Version::V1, Version::V2] {
        let config = pki.client().proxy_header(header.version(version));
        let mut client = AsyncClient::connect_to("127.0.0.1", running.local_addr().port(), config)
            .await
            .unwrap();
        let reply = client.request(&sample()).await.unwrap();
        assert_eq!(reply["peer"].as_str(), Some("203.0.113.7:51234"));
    }
}

/// A proxy often sends the header and the client's first bytes (here, the
/// TLS ClientHello) in one segment: the server must hand those bytes to TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_in_the_same_write_as_the_header_is_not_lost() {
    use asyncapy::proxy::ProxyHeader;
    use asyncapy::tls::rustls;
    use std::io::{Read, Write};

    let pki = Pki::new("proxy-early");
    let running = start_tls_whoami(&pki).await;
    let port = running.local_addr().port();
    let options = TlsOptions::new().ca_file(&pki.ca_file);
    let reply = tokio::task::spawn_blocking(move || {
        let config = asyncapy::tls::client_config(&options).unwrap();
        let name = asyncapy::tls::server_name(&options, "localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config, name).unwrap();
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut first = ProxyHeader::proxied(
            "[2001:db8::5]:5555".parse().unwrap(),
            "[2001:db8::1]:1500".parse().unwrap(),
        )
        .to_bytes();
        tls.write_tls(&mut first).unwrap(); // the ClientHello, after the header
        sock.write_all(&first).unwrap();

        let mut stream = rustls::Stream::new(&mut tls, &mut sock);
        let codec = asyncapy::asyncaproto::FrameCodec::default();
        let mut frame = bytes::BytesMut::new();
        codec
            .write_frame(Encoding::Json, &sample(), &mut frame)
            .unwrap();
        stream.write_all(&frame).unwrap();
        let mut got = bytes::BytesMut::new();
        loop {
            if let Some(frame) = codec.decode_frame(&mut got).unwrap() {
                return frame.encoding.decode(&frame.payload).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before the reply");
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap();
    assert_eq!(reply["peer"].as_str(), Some("[2001:db8::5]:5555"));
}
