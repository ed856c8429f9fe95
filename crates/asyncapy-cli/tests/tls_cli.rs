//! TLS from the command line: `serve --tls-self-signed` (with the original
//! Python client's `ssl.wrap_socket` checking the printed fingerprint), `serve`
//! with certificate files and client certificates, and `send` and `bench`
//! with their `--tls*` flags. Certificates are made here (rcgen), into a
//! scratch folder under the target directory.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use support::asyncapy;

/// `asyncapy serve` on a free port, stopped (SIGTERM) when dropped.
struct Serve {
    child: Child,
    port: String,
    /// The lines printed after "listening on".
    lines: Vec<String>,
}

impl Serve {
    /// Starts `asyncapy serve ARGS --port 0` and reads `extra` lines after
    /// the "listening on" line (bounded waits).
    fn start(args: &[&str], extra: usize) -> Serve {
        let started = support::serve(args, extra, false);
        assert!(started.addr.starts_with("127.0.0.1:"), "{}", started.addr);
        Serve {
            child: started.child,
            port: started.port,
            lines: started.lines,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        support::signal(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// `asyncapy send --port PORT ARGS '{"foo": "bar"}' --compact`.
fn send(port: &str, args: &[&str]) -> (Output, String, String) {
    run(asyncapy()
        .args(["send", "--port", port, "--compact", "--timeout", "10"])
        .args(args)
        .arg(r#"{"foo": "bar"}"#))
}

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "tls-cli-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA (its certificate in `ca.pem`), a server certificate for localhost and
/// 127.0.0.1 (`server.pem`, `server-key.pem`), and a client certificate
/// (`client.pem`, `client-key.pem`), all signed by the CA.
fn pki(dir: &Path) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "asyncapy CLI test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (file, names, purpose) in [
        (
            "server",
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client",
            vec!["client.example".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}-key.pem")), key.serialize_pem()).unwrap();
    }
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

#[test]
fn serve_tls_self_signed_prints_the_fingerprint_the_python_client_sees() {
    let serve = Serve::start(&["--tls-self-signed"], 2);
    assert_eq!(
        serve.lines[0],
        "TLS: self-signed certificate for localhost, 127.0.0.1, ::1 (made at start, not saved)"
    );
    let fingerprint = serve.lines[1]
        .strip_prefix("TLS: SHA-256 fingerprint ")
        .unwrap_or_else(|| panic!("{:?}", serve.lines[1]));
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert!(fingerprint
        .split(':')
        .all(|byte| byte.len() == 2 && byte.chars().all(|c| c.is_ascii_hexdigit())));

    // The original client's TLS: ssl.wrap_socket, no verification, no SNI.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../asyncapy/tests/python");
    let (output, stdout, stderr) = run(Command::new("python3").current_dir(script).args([
        "tls_client.py",
        "--port",
        &serve.port,
    ]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"OK"), "{stdout}");
    assert_eq!(words.last(), Some(&fingerprint), "{stdout}");

    // `send --tls --tls-insecure` talks to it; verifying clients refuse it.
    let (output, stdout, stderr) = send(&serve.port, &["--tls", "--tls-insecure"]);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"foo": "bar"}"#);
    assert!(stderr.contains("--tls-insecure"), "a warning: {stderr}");
    // --tls-insecure alone implies --tls.
    let (output, _, stderr) = send(&serve.port, &["--tls-insecure"]);
    assert!(output.status.success(), "{stderr}");

    let dir = scratch("self-signed");
    pki(&dir);
    let (output, _, stderr) = send(&serve.port, &["--tls-ca", &path(&dir, "ca.pem")]);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown issuer"), "{stderr}");

    // Plain TCP on a TLS port: told to use TLS.
    let (output, _, stderr) = send(&serve.port, &[]);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the server answered with TLS: connect with TLS"),
        "{stderr}"
    );
}

#[test]
fn serve_with_certificate_files_and_client_certificates() {
    let dir = scratch("mutual");
    pki(&dir);
    let ca = path(&dir, "ca.pem");
    let serve = Serve::start(
        &[
            "--tls-cert",
            &path(&dir, "server.pem"),
            "--tls-key",
            &path(&dir, "server-key.pem"),
            "--tls-client-ca",
            &ca,
        ],
        0,
    );
    let client_cert = path(&dir, "client.pem");
    let client_key = path(&dir, "client-key.pem");
    let with_client = [
        "--tls-ca",
        ca.as_str(),
        "--tls-client-cert",
        client_cert.as_str(),
        "--tls-client-key",
        client_key.as_str(),
    ];
    let (output, stdout, stderr) = send(&serve.port, &with_client);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"foo": "bar"}"#);

    // No client certificate: refused, clearly.
    let (output, _, stderr) = send(&serve.port, &["--tls", "--tls-ca", &ca]);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the server requires a client certificate"),
        "{stderr}"
    );

    // A name the certificate does not carry.
    let mut wrong_name = with_client.to_vec();
    wrong_name.extend(["--tls-server-name", "elsewhere.example"]);
    let (output, _, stderr) = send(&serve.port, &wrong_name);
    assert!(!output.status.success());
    assert!(
        stderr.contains("not valid for \"elsewhere.example\""),
        "{stderr}"
    );

    // bench, persistent and per request, with the same flags.
    let mut bench = asyncapy();
    bench
        .args(["bench", "--port", &serve.port, "--json", "--no-progress"])
        .args(["-c", "2", "-p", "4", "-n", "400", "--payload-size", "20000"])
        .args(with_client);
    let (output, stdout, stderr) = run(&mut bench);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["requests"], 400, "{report}");
    assert_eq!(report["errors"]["total"], 0, "{report}");
    assert_eq!(report["settings"]["tls"], true, "{report}");

    let mut bench = asyncapy();
    bench
        .args(["bench", "--port", &serve.port, "--json", "--no-progress"])
        .args(["-c", "2", "-n", "20", "--mode", "per-request"])
        .args(with_client);
    let (output, stdout, stderr) = run(&mut bench);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["requests"], 20, "{report}");

    // Without a client certificate, every connection is a TLS error.
    let mut bench = asyncapy();
    bench
        .args(["bench", "--port", &serve.port, "--json", "--no-progress"])
        .args(["-c", "1", "-n", "3", "--timeout", "5s", "--tls-ca", &ca]);
    let (output, stdout, _) = run(&mut bench);
    assert!(!output.status.success());
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(report["errors"]["total"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn bad_tls_options_fail_at_start_with_a_clear_message() {
    let dir = scratch("bad");
    pki(&dir);
    let missing = path(&dir, "missing.pem");
    for (args, expected) in [
        (
            vec!["--tls-cert".to_owned(), path(&dir, "server.pem")],
            "tls_key: missing",
        ),
        (
            vec![
                "--tls-cert".to_owned(),
                missing.clone(),
                "--tls-key".to_owned(),
                path(&dir, "server-key.pem"),
            ],
            "tls_cert: cannot read",
        ),
        (
            vec![
                "--tls-cert".to_owned(),
                path(&dir, "server.pem"),
                "--tls-key".to_owned(),
                path(&dir, "client-key.pem"),
            ],
            "tls_key: ",
        ),
        (
            vec![
                "--tls-self-signed".to_owned(),
                "--tls-cert".to_owned(),
                path(&dir, "server.pem"),
            ],
            "cannot be used with",
        ),
    ] {
        let (output, _, stderr) = run(asyncapy()
            .arg("serve")
            .args(&args)
            .args(["--port", "0"])
            .stdin(Stdio::null()));
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
