//! Log output of the command: `tracing` to stderr at the configured Python level.

use asyncapy::LogLevel;
use tracing_subscriber::filter::LevelFilter;

/// Installs a stderr subscriber showing records at `level` and above.
pub(crate) fn init(level: LogLevel) {
    let filter = match level.name() {
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARNING" => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
