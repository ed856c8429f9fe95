//! `Server::start()` as the README and the examples use it: the `hello_world`
//! example built and run as its own process (port 0 and an AsyncAPY INI file
//! as its arguments), found through its `Serving on ADDR` log line, driven
//! over a socket and stopped with SIGINT. Then the errors `start()` returns,
//! in-process, with their messages.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use asyncapy::{Client, Config, LogLevel, Packet, SendError, Server};
use common::process::{self, Lines, PATIENCE};

/// How long building the example may take (other builds may hold cargo's lock).
const BUILD_PATIENCE: Duration = Duration::from_secs(900);

/// `{"foo": "bar"}` in JSON, framed with the default 4-byte header.
const FOO_BAR: &[u8] = b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}";

/// The `hello_world` example's binary, built once per test run with the
/// features this test was built with (the library is then not rebuilt:
/// `cargo test --workspace` has usually built the example already).
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args([
            "build",
            "--example",
            "hello_world",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ]);
        let features: Vec<&str> = [
            ("tls", cfg!(feature = "tls")),
            ("sqlite", cfg!(feature = "sqlite")),
            ("redis", cfg!(feature = "redis")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if !features.is_empty() {
            command.args(["--features", &features.join(",")]);
        }
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = rx
            .recv_timeout(BUILD_PATIENCE)
            .expect("the example builds in time")
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "cargo build --example hello_world failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The artifact line of the example names its executable.
        let executable = stdout
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"hello_world\""))
            .find_map(|l| {
                let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
                let end = start + l[start..].find('"')?;
                Some(PathBuf::from(&l[start..end]))
            })
            .unwrap_or_else(|| panic!("no executable in cargo's output:\n{stdout}"));
        assert!(executable.exists(), "{}", executable.display());
        executable
    })
}

/// An INI file in a scratch folder of the target directory.
fn ini_file(name: &str, body: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("start");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.ini", std::process::id()));
    std::fs::write(&path, format!("[AsyncAPY]\n{body}")).unwrap();
    path
}

/// A running `hello_world` process: its stderr lines as they come, its
/// stdout and exit status when it ends. Killed when dropped.
struct Example {
    pid: u32,
    stderr: Lines,
    stdout: Lines,
    exited: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
}

impl Example {
    /// `hello_world ARGS...`.
    fn spawn(args: &[&str]) -> Example {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stderr = Lines::read(child.stderr.take().unwrap());
        let stdout = Lines::read(child.stdout.take().unwrap());
        let (exit_tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exit_tx.send(status);
            }
        });
        Example {
            pid,
            stderr,
            stdout,
            exited,
            status: None,
        }
    }

    /// The address of the `Serving on ADDR` line.
    fn serving_on(&mut self) -> String {
        let line = self
            .stderr
            .wait_for("Serving on", |l| l.contains("Serving on "));
        line.rsplit("Serving on ").next().unwrap().trim().to_owned()
    }

    /// Sends SIGINT, then waits for the exit: its status, every stderr line,
    /// and stdout.
    fn interrupt(mut self) -> (ExitStatus, Vec<String>, String) {
        assert!(process::signal(self.pid, "INT"));
        self.finish()
    }

    /// Waits for the process to end by itself.
    fn finish(&mut self) -> (ExitStatus, Vec<String>, String) {
        let log = self.stderr.until_end();
        let status = self
            .exited
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("the process did not exit:\n{}", log.join("\n")));
        self.status = Some(status);
        let stdout = self.stdout.until_end().join("\n");
        (status, log, stdout)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if self.status.is_none() {
            process::kill(self.pid);
        }
    }
}

/// Connects to `addr`, writes `bytes`, and returns all it reads until the
/// server closes the connection.
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}

/// The TCP port `pid` listens on, read from /proc (when nothing it logs
/// says so): its socket descriptors against the kernel's table of
/// listening sockets.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... uid timeout inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

/// Threads of `pid`.
fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// The process ended cleanly on SIGINT, saying so in its log.
fn assert_clean_interrupt(status: ExitStatus, log: &[String]) {
    let text = log.join("\n");
    assert!(status.success(), "exit status {status}:\n{text}");
    assert!(
        log.iter()
            .any(|l| l.contains("Signal received, shutting down")),
        "{text}"
    );
    assert!(log.iter().any(|l| l.ends_with("Server stopped")), "{text}");
}

#[test]
fn serves_an_echo_and_exits_zero_on_sigint() {
    let config = ini_file("defaults", "timeout = 5\n");
    let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
    let addr = example.serving_on();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_ne!(addr, "127.0.0.1:0", "the real port");
    // hello_world answers with the packet, then closes the session.
    assert_eq!(exchange(&addr, FOO_BAR), FOO_BAR);
    let (status, log, stdout) = example.interrupt();
    assert_clean_interrupt(status, &log);
    // The default format: "[INFO] 10/02/2020 16:39:35 PM message".
    let serving = log.iter().find(|l| l.contains("Serving on")).unwrap();
    assert!(serving.starts_with("[INFO] "), "{serving}");
    assert!(
        stdout.contains("Hello world from Client(127.0.0.1)!"),
        "{stdout}"
    );
    assert!(stdout.contains("Echoing back"), "{stdout}");
}

/// The handlers are installed before "Serving on" is logged: a SIGINT at
/// once after it is a graceful shutdown, not the default action.
#[test]
fn a_sigint_right_after_serving_on_exits_zero() {
    let config = ini_file("quick", "grace_period = 1\n");
    for _ in 0..5 {
        let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
        example.serving_on();
        let (status, log, _) = example.interrupt();
        assert_clean_interrupt(status, &log);
    }
}

#[test]
fn the_log_follows_logging_level_console_format_and_datefmt_at_debug() {
    let config = ini_file(
        "debug",
        "logging_level = 10\n\
         console_format = %%(levelname)s|%%(asctime)s|%%(message)s\n\
         datefmt = %%Y-%%m-%%d@%%H:%%M:%%S\n",
    );
    let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
    let addr = example.serving_on();
    assert_eq!(exchange(&addr, FOO_BAR), FOO_BAR);
    let (status, log, _) = example.interrupt();
    assert_clean_interrupt(status, &log);
    let text = log.join("\n");
    let now = chrono::Local::now().naive_local();
    for line in &log {
        let mut parts = line.splitn(3, '|');
        let (level, date, message) = (
            parts.next().unwrap(),
            parts
                .next()
                .unwrap_or_else(|| panic!("not in the format: {line}")),
            parts
                .next()
                .unwrap_or_else(|| panic!("not in the format: {line}")),
        );
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
            "{line}"
        );
        let date = chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d@%H:%M:%S")
            .unwrap_or_else(|e| panic!("{date:?} is not in the datefmt ({e}): {line}"));
        assert!((now - date).num_seconds().abs() < 600, "{line}");
        assert!(!message.is_empty(), "{line}");
    }
    assert!(
        log.iter()
            .any(|l| l.starts_with("DEBUG|") && l.contains("Expected stream length is 16")),
        "{text}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("DEBUG|") && l.contains("Calling 'echo_server' in group 0")),
        "{text}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("INFO|") && l.contains("|Serving on 127.0.0.1:")),
        "{text}"
    );
}

/// At WARNING nothing says where the server listens: the test finds its
/// listening socket in /proc (the signal handlers are installed before the
/// bind, so a listener means a SIGINT is safe).
#[test]
fn at_warning_only_warnings_are_logged() {
    let config = ini_file(
        "warning",
        "logging_level = 30\nconsole_format = %%(levelname)s|%%(message)s\n",
    );
    let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
    let deadline = Instant::now() + PATIENCE;
    let port = loop {
        if let Some(port) = listening_port(example.pid) {
            break port;
        }
        if let Ok(status) = example.exited.try_recv() {
            example.status = Some(status);
            panic!("exited with {status} before listening");
        }
        assert!(Instant::now() < deadline, "no listening socket in time");
        std::thread::sleep(Duration::from_millis(5));
    };
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(exchange(&addr, FOO_BAR), FOO_BAR);
    // A payload that is not JSON: a warning, and ERR_REQUEST_MALFORMED.
    let reply = exchange(&addr, b"\x00\x00\x00\x07\x16\x00{\"a\": ");
    assert!(
        String::from_utf8_lossy(&reply).contains("ERR_REQUEST_MALFORMED"),
        "{reply:?}"
    );
    let (status, log, stdout) = example.interrupt();
    let text = log.join("\n");
    assert!(status.success(), "exit status {status}:\n{text}");
    assert!(
        stdout.contains("Hello world from"),
        "the handler ran: {stdout}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("WARNING|(") && l.contains("Malformed")),
        "{text}"
    );
    for line in &log {
        assert!(
            line.starts_with("WARNING|") || line.starts_with("ERROR|"),
            "below WARNING: {line}"
        );
    }
}

#[test]
fn workers_sets_the_runtime_threads() {
    for (workers, threads) in [(2, 3), (1, 1)] {
        let config = ini_file(
            &format!("workers{workers}"),
            &format!("workers = {workers}\n"),
        );
        let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
        let addr = example.serving_on();
        assert_eq!(exchange(&addr, FOO_BAR), FOO_BAR);
        // The main thread, and the workers of a multi-threaded runtime (none
        // for a single-threaded one: the main thread runs it).
        assert_eq!(
            thread_count(example.pid),
            threads,
            "threads with workers = {workers}"
        );
        let (status, log, _) = example.interrupt();
        assert_clean_interrupt(status, &log);
    }
}

#[test]
fn a_port_in_use_exits_non_zero_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let config = ini_file("taken", "");
    let mut example = Example::spawn(&[&port, config.to_str().unwrap()]);
    let (status, log, _) = example.finish();
    let text = log.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    // main's Err, as Rust prints it.
    assert!(
        text.contains(&format!("Bind {{ addr: \"127.0.0.1:{port}\"")),
        "{text}"
    );
    assert!(text.contains("AddrInUse"), "{text}");
    assert!(!text.contains("Serving on"), "{text}");
}

#[test]
fn a_bad_config_value_exits_non_zero_naming_the_key() {
    let config = ini_file("bad", "logging_level = loud\n");
    let mut example = Example::spawn(&["0", config.to_str().unwrap()]);
    let (status, log, _) = example.finish();
    let text = log.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("key: \"logging_level\", value: \"loud\""),
        "{text}"
    );
    assert!(!text.contains("Serving on"), "{text}");
}

// In-process: the errors start() returns, as their messages read. The
// configurations log only CRITICAL lines (the first start() sets up this
// process's log).

async fn echo(client: Client, packet: Packet) -> Result<(), SendError> {
    client.send(&packet).await
}

fn quiet_config() -> Config {
    Config {
        port: 0,
        logging_level: LogLevel::CRITICAL,
        ..Config::default()
    }
}

fn start_error(config: Config) -> String {
    let mut server = Server::new(config);
    server.register_handler(echo);
    server.start().unwrap_err().to_string()
}

#[test]
fn start_reports_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let message = start_error(Config {
        port,
        ..quiet_config()
    });
    assert!(
        message.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{message}"
    );
}

#[test]
fn start_reports_bad_values_naming_the_key() {
    let message = start_error(Config {
        header_size: 9,
        ..quiet_config()
    });
    assert_eq!(
        message,
        "header_size: invalid value \"9\": must be between 1 and 8"
    );
    let message = start_error(Config {
        console_format: "%(nosuch)s".into(),
        ..quiet_config()
    });
    assert!(
        message.starts_with("console_format: invalid value \"%(nosuch)s\": "),
        "{message}"
    );
    let message = start_error(Config {
        datefmt: "%Q".into(),
        ..quiet_config()
    });
    assert!(
        message.starts_with("datefmt: invalid value \"%Q\": "),
        "{message}"
    );
}

#[test]
fn start_without_a_handler_is_refused() {
    let message = Server::new(quiet_config()).start().unwrap_err().to_string();
    assert_eq!(message, "no handler registered");
}
