//! `asyncapy`: run an AsyncAPY server, and load-test any AsyncAProto server.

use clap::{Parser, Subcommand};

mod bench;
mod serve;

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
    /// Load-test an AsyncAProto server and report throughput and latency.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(args),
    }
}
