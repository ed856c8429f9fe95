//! `asyncapy bench`.

/// Options of `asyncapy bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {}

/// Runs the load test and prints the report.
pub(crate) fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
