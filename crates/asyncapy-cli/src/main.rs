//! `asyncapy`: run an AsyncAPY server, and load-test any AsyncAProto server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
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
    /// Load-test an AsyncAProto server and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Issue, inspect, update, reissue, revoke and list API keys in an SQLite file or a Redis.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Send(args) => send::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Keys(args) => keys::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes on one line, without a backtrace.
            eprintln!("asyncapy: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
