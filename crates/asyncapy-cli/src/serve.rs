//! `asyncapy serve`.

/// Options of `asyncapy serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {}

/// Runs the echo server until interrupted.
pub(crate) fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
