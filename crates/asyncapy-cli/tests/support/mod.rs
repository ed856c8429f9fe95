//! What the CLI tests share: the binary, bounded runs, and `asyncapy serve`
//! started on a free port and read up to its "listening on" line.
//!
//! Each test file uses a part of it (`mod support;`).

#![allow(dead_code, unreachable_pub)] // each test crate uses a part
#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

#[path = "../../../asyncapy/tests/common/process.rs"]
mod process;

#[allow(unused_imports)] // each test crate uses a part
pub use process::{kill, run_bounded, signal, Lines, PATIENCE};

/// The `asyncapy` binary under test.
pub fn asyncapy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_asyncapy"))
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
    let mut stdout = Lines::read(child.stdout.take().unwrap());
    let deadline = Instant::now() + PATIENCE;
    let lines: Result<Vec<String>, Vec<String>> = (0..=extra)
        .map(|_| {
            stdout
                .next_before(deadline)
                .map(|line| line.trim_end().to_owned())
        })
        .collect::<Result<_, _>>()
        .map_err(|_| stdout.seen().to_vec());
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
