//! Configuration from an original AsyncAPY config.ini, and its errors.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::path::PathBuf;

use asyncapy::asyncaproto::{ByteOrder, Encoding, FrameConfig, Value};
use asyncapy::Server;
use common::*;

/// A file in the system's temp folder, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("asyncapy-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn the_original_sample_config_ini_loads_and_serves() {
    let file = TempFile::new(
        "sample.ini",
        "# AsyncAPY sample\n[AsyncAPY]\naddr = 127.0.0.1\nport = 1500\nencoding = json\n\
         header_size = 2\nbyteorder = little\nbuf = 1024\nlogging_level = 10\ntimeout = 15\n\
         console_format = [%%(levelname)s] %%(asctime)s %%(message)s\n",
    );
    // The file's port is overridden so the test can use a free one.
    let mut server = Server::builder()
        .config_file(&file.0)
        .port(0)
        .build()
        .unwrap();
    assert_eq!(server.config().timeout.as_secs(), 15);
    assert_eq!(
        server.config().console_format,
        "[%(levelname)s] %(asctime)s %(message)s"
    );
    server.add_handler(echo);
    let running = server.bind().await.unwrap();
    let layout = FrameConfig::new(2, ByteOrder::Little, 65535).unwrap();
    let mut client = RawClient::connect_with(running.local_addr(), layout).await;
    let m = map(&[("ok", Value::from(true))]);
    assert_eq!(client.request(Encoding::Json, &m).await.1, m);
}

#[test]
fn config_errors_name_the_file_the_key_and_the_value() {
    let file = TempFile::new("bad.ini", "[AsyncAPY]\ntimeout = soon\n");
    let err = Server::builder()
        .config_file(&file.0)
        .build()
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: timeout: invalid value \"soon\": must be a number of seconds",
            file.0.display()
        )
    );
    let missing = std::env::temp_dir().join("asyncapy-no-such-file.ini");
    let err = Server::builder()
        .config_file(&missing)
        .build()
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let file = TempFile::new("typo.ini", "[AsyncAPY]\nprot = 1500\n");
    let err = Server::builder()
        .config_file(&file.0)
        .build()
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: unknown key 'prot'", file.0.display())),
        "{err}"
    );
}
