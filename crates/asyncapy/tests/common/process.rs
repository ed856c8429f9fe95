//! Child processes in tests, with every wait bounded: a pipe's lines read on
//! a thread (to the pipe's end, so the child never blocks on a full pipe),
//! waited for with a deadline; commands run to their end within
//! [`PATIENCE`]; signals sent by pid.
//!
//! Shared by the framework's tests (as `common::process`) and the CLI's
//! (whose `tests/support` includes this file by path): it depends on std only.

#![allow(dead_code, unreachable_pub)] // each test crate uses a part

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any single wait on a child may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Sends `signal` (`"INT"`, `"TERM"`, `"KILL"`, …) to the process `pid`:
/// whether `kill` reported success.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// SIGKILLs the process `pid` (whose `Child` another thread may hold).
pub fn kill(pid: u32) {
    let _ = signal(pid, "KILL");
}

/// Runs `command` to its end (stdin empty, stdout and stderr captured),
/// within [`PATIENCE`]: killed and the test failed past it.
pub fn run_bounded(command: &mut Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(PATIENCE) else {
        kill(pid);
        panic!("{command:?} did not end within {PATIENCE:?}");
    };
    output.expect("the command's output")
}

/// Why no line came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoLine {
    /// Not before the deadline.
    Timeout,
    /// The pipe ended (the process closed it, or exited).
    Ended,
}

/// The lines of a child's pipe (`\n` and `\r\n` endings dropped, invalid
/// UTF-8 replaced), read on a thread to the pipe's end, and every line
/// received so far.
pub struct Lines {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Starts reading `pipe` (a child's `stdout` or `stderr`, taken).
    pub fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                // Once nobody listens, the pipe is still read to its end.
                let _ = tx.send(text.to_owned());
            }
        });
        Lines {
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, if it comes before `deadline`.
    pub fn next_before(&mut self, deadline: Instant) -> Result<String, NoLine> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Timeout) => Err(NoLine::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(NoLine::Ended),
        }
    }

    /// Waits (within [`PATIENCE`]) for the first line that `matches`, and
    /// returns it; fails the test, naming `what` and showing the lines so
    /// far, when none comes.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.next_before(deadline) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(NoLine::Timeout) => {
                    panic!("no {what} line in time; so far:\n{}", self.text())
                }
                Err(NoLine::Ended) => {
                    panic!("the process ended without a {what} line:\n{}", self.text())
                }
            }
        }
    }

    /// Reads on to the pipe's end, within [`PATIENCE`] (the test fails past
    /// it), and returns every line received, taking them.
    pub fn until_end(&mut self) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.next_before(deadline) {
                Ok(_) => {}
                Err(NoLine::Ended) => return std::mem::take(&mut self.seen),
                Err(NoLine::Timeout) => panic!("still open; so far:\n{}", self.text()),
            }
        }
    }

    /// The lines received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The lines received so far, one a line.
    pub fn text(&self) -> String {
        self.seen.join("\n")
    }
}
