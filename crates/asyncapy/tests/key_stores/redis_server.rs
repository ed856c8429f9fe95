//! A real `redis-server` for a test: started on a free loopback port in a
//! temporary directory, without persistence, and killed when dropped.
//!
//! Without `redis-server` installed the tests that need it fail, saying how
//! to install it: they are part of the suite, not optional.
//!
//! Shared by the framework's tests and the CLI's (which include this file by
//! path): it depends on std and `tempfile` only.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `redis-server` may take to answer PING after it starts.
const STARTUP: Duration = Duration::from_secs(10);

const NOT_INSTALLED: &str =
    "redis-server is not installed, and the Redis key store tests need it. \
     Install it with `apt-get install redis-server` (Debian/Ubuntu), or run \
     scripts/test-deps.sh, which installs every test dependency";

/// A `redis-server` process of the test's own.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers PING. Panics (failing the test) when it cannot, and when
    /// `redis-server` is not installed.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        // A free port: bind port 0, read the port, release it (redis-server
        // has no port 0). Another process may take it in between: then the
        // server exits at once, and another port is tried.
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.launch() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("redis-server did not start: {last_failure}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same across [`stop`](Self::stop) and
    /// [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the process (SIGKILL: as abrupt as a crash) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (stopping it first if it runs), and
    /// waits until it answers PING. It comes back empty.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(failure) = self.launch() {
            panic!("redis-server did not restart: {failure}");
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns the process and waits for PING; on failure the process is
    /// gone and the reason (with its log) is returned.
    fn launch(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let spawned = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!("{NOT_INSTALLED}"),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if answers_ping(self.port) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!("it exited with {status}; log:\n{}", self.log()));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("no PONG within {STARTUP:?}; log:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Whether something on `port` answers `PING` with `+PONG`, within 1 s.
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let patience = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, patience) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(patience));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
