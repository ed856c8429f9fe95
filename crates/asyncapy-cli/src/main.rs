//! `asyncapy`: run an AsyncAPY server, send it packets, manage its API keys,
//! and load-test any AsyncAProto server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod flags;
mod keys;
mod send;
mod serve;
mod tls;

/// AsyncAPY for Rust: serve and exercise AsyncAProto endpoints.
#[derive(Debug, Parser)]
#[command(name = "asyncapy", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an echo server: every packet is answered with itself, in the session's encoding.
    Serve(Box<serve::ServeArgs>),
    /// Send packets (JSON objects) to a server and print the replies.
    Send(send::SendArgs),
    /// Issue, inspect, update, reissue, revoke and list API keys in an SQLite file or a Redis.
    Keys(keys::KeysArgs),
    /// Load-test an AsyncAProto server and report throughput and latency.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Send(args) => send::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asyncapy: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its chain of causes on one line, without a backtrace, each
/// cause once. The library's errors carry their cause in their message and
/// as their source (`cannot read FILE: No such file or directory`, with the
/// I/O error as the source): a cause the message before it already ends
/// with is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || previous.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// An error that shows its cause in its message and returns it as its
    /// source, as the library's do.
    #[derive(Debug)]
    struct Both(std::io::Error);

    impl std::fmt::Display for Both {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read x.ini: {}", self.0)
        }
    }

    impl std::error::Error for Both {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn io() -> std::io::Error {
        std::io::Error::other("gone")
    }

    #[test]
    fn a_cause_already_in_the_message_is_shown_once() {
        let error = anyhow::Error::new(Both(io()));
        assert_eq!(one_line(&error), "cannot read x.ini: gone");
        let error = error.context("--config");
        assert_eq!(one_line(&error), "--config: cannot read x.ini: gone");
    }

    #[test]
    fn other_causes_are_all_shown() {
        let error = anyhow::Error::new(io()).context("inner").context("outer");
        assert_eq!(one_line(&error), "outer: inner: gone");
    }
}
