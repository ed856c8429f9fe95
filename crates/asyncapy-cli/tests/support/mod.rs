//! What the CLI tests share: the binary, bounded runs, and `asyncapy serve`
//! started on a free port and read up to its "listening on" line.
//!
//! Each test file uses a part of it (`mod support;`).

#![allow(dead_code, unreachable_pub)] // each test crate uses a part
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any single wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The `asyncapy` binary under test.
pub fn asyncapy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_asyncapy"))
}

/// Runs `command` to its end (stdin empty), within [`PATIENCE`]: killed
/// and the test failed past it.
pub fn run_bounded(command: &mut Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(PATIENCE) else {
        kill(pid);
        panic!("{command:?} did not end within {PATIENCE:?}");
    };
    output.unwrap()
}

/// SIGKILLs the process `pid` (whose `Child` another thread holds).
pub fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// A started `asyncapy serve`: nothing stops it here (each test file
/// decides how: SIGTERM, a kill, or a wait for its exit).
pub struct Started {
    /// The server; its stdout is drained by a thread of [`serve`].
    pub child: Child,
    /// What "listening on" named: `127.0.0.1:PORT`.
    pub addr: String,
    /// The port of `addr`.
    pub port: String,
    /// The lines printed after "listening on", as many as asked for.
    pub lines: Vec<String>,
}

/// Starts `asyncapy serve ARGS --port 0` and returns it once it has printed
/// its "listening on" line and `extra` lines after it, within [`PATIENCE`].
/// Its stderr is piped when `keep_stderr` (for the test to read), dropped
/// otherwise. A server that does not get there is killed, and the test fails
/// with what the server printed.
pub fn serve(args: &[&str], extra: usize, keep_stderr: bool) -> Started {
    let mut child = asyncapy()
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if keep_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    // Read on a thread, so the wait is bounded; the rest of stdout is
    // drained, so the server never blocks on a full pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..=extra {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            lines.push(line.trim_end().to_owned());
        }
        let _ = tx.send(lines);
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    let lines = rx.recv_timeout(PATIENCE);
    let first = lines.as_ref().ok().and_then(|lines| lines.first());
    let addr = first.and_then(|line| line.strip_prefix("listening on "));
    match (&lines, addr) {
        (Ok(lines), Some(addr)) if lines.len() == extra + 1 => {
            let port = addr.rsplit_once(':').unwrap().1.to_owned();
            Started {
                addr: addr.to_owned(),
                port,
                lines: lines[1..].to_vec(),
                child,
            }
        }
        _ => {
            let _ = child.kill();
            let status = child.wait();
            let mut log = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut log);
            }
            panic!(
                "asyncapy serve {args:?} did not print \"listening on\" and {extra} more \
                 lines within {PATIENCE:?}: printed {lines:?}; exit status {status:?}; \
                 stderr:\n{log}"
            );
        }
    }
}
