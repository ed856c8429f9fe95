//! `asyncapy bench`: a load generator for any AsyncAProto server.
//!
//! It opens `--connections` connection slots, each keeping `--pipeline`
//! requests outstanding (or, with `--mode per-request`, opening a connection
//! per request), for `--duration` or until `--requests` have been sent. Every
//! reply is verified against the request (an echo server is assumed), timed,
//! and counted; the report gives throughput, latency percentiles and errors by
//! kind, and the exit status is non-zero when any error occurred.
//!
//! What counts: `requests` are the replies that echo the request, sent after
//! the warm-up. Latency runs from the write of a request's batch to the read
//! that completed its reply (in per-request mode, from before the connect).
//! With `--rate`, each connection sends on a schedule (one request every
//! `connections / rate` seconds, the connections spread over the interval)
//! instead of as replies come; a request that fell due while its pipeline was
//! full waited for the server, and its latency counts from when it was due, so
//! a server that falls behind shows it (no coordinated omission).
//! Requests still in flight when a timed run ends are neither counted nor
//! errors. Errors are counted from the start, warm-up included. After an error
//! that leaves the connection unusable (a failure reply, a reset, a timeout, a
//! malformed frame) the slot reconnects; a mismatch alone does not end the
//! connection. With `-n`, every request sent counts against the total, also the
//! ones lost with their connection, and a failed connection attempt costs one
//! pipeline's worth, so a dead server cannot keep the run going. With
//! `--resend`, what a restarting server loses (a reply `ERR_SHUTTING_DOWN`, a
//! connection closed or reset with requests outstanding, a refused connection)
//! is sent again on a new connection and counted as resent, not as an error,
//! until `--timeout` passes without an answered request. A timed run
//! stops at once, with an error and no report, when the first connection
//! attempt of every connection fails (nothing listens there, say).
//!
//! Modules: [`payload`] builds the one request, [`driver`] runs a connection
//! slot, [`verify`] judges replies, [`stats`] gathers figures, [`report`]
//! prints them.

mod driver;
mod duration;
mod payload;
mod report;
mod stats;
mod verify;

use std::io::IsTerminal as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use asyncaproto::{ByteOrder, Encoding, FrameCodec, FrameConfig};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use driver::{
    Driver, Mode, Pacer, Reachability, Schedule, Shared, Stop, Target, TlsTarget, Workload,
};
use duration::parse_duration;
use payload::Request;
use report::{Report, Settings};
use stats::{shared_histogram, ConnStats, Progress, SharedHistogram, Totals};

/// The default length of a timed run.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The default warm-up of a timed run (a counted run has none by default).
const DEFAULT_WARMUP: Duration = Duration::from_secs(1);

/// How often the progress display refreshes.
const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// How connections are used, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// Keep each connection open and send request after request on it.
    Persistent,
    /// One TCP connection per request: connect, send, read the reply, close
    /// (what the original AsyncAPY server forces on its clients). Latency then
    /// includes the connection set-up.
    PerRequest,
}

/// Options of `asyncapy bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The server's host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// The server's port.
    #[arg(long, default_value_t = 8081)]
    port: u16,

    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    connections: u32,

    /// How long to measure, e.g. 10s, 500ms, 2m [default: 10s].
    #[arg(short = 'd', long, value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,

    /// Send this many requests in all instead of running for a duration.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Requests kept outstanding on each connection.
    #[arg(short = 'p', long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pipeline: u32,

    /// Send at this total rate (requests per second, spread evenly over the
    /// connections and over time) instead of as fast as replies come. Latency
    /// then runs from each request's scheduled time, so a server that falls
    /// behind shows it (no coordinated omission); --pipeline bounds the
    /// requests outstanding per connection. Persistent mode only.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,

    /// Size in bytes of each encoded payload: a map {"data": "xxx…"} padded to
    /// exactly this size in the chosen encoding.
    #[arg(long, default_value_t = 64)]
    payload_size: usize,

    /// Payload encoding: json or ziproto.
    #[arg(short = 'e', long, default_value = "json")]
    encoding: Encoding,

    /// Size of the Content-Length field, 1 to 8 bytes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    header_size: u8,

    /// Byte order of the Content-Length field: big or little.
    #[arg(long, default_value = "big")]
    byteorder: ByteOrder,

    /// Whether connections are kept open or opened per request.
    #[arg(long, value_enum, default_value_t = ModeArg::Persistent)]
    mode: ModeArg,

    /// Load before measuring, not counted in the figures (errors still count)
    /// [default: 1s with --duration, 0 with --requests].
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,

    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No live progress display (it is also off when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,

    /// Runtime worker threads [default: the available parallelism]; 1 runs
    /// everything on the calling thread.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,

    /// The longest wait to establish a connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    connect_timeout: Duration,

    /// The longest wait for the next reply while requests are outstanding.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,

    /// Resend what a restarting server lost, as a client does during a
    /// rolling restart: requests answered ERR_SHUTTING_DOWN, or outstanding on
    /// a connection the server closed or reset, go again on a new connection,
    /// and refused connections are tried again (after a 10 ms pause). They are
    /// counted as resent, not as errors, for up to --timeout without an
    /// answered request; after that they are errors as usual.
    #[arg(long)]
    resend: bool,

    #[command(flatten)]
    tls: crate::tls::TlsArgs,
}

/// Runs the load test and prints the report; fails when any error occurred.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mode = match args.mode {
        ModeArg::Persistent => Mode::Persistent,
        ModeArg::PerRequest => Mode::PerRequest,
    };
    if mode == Mode::PerRequest && args.pipeline > 1 {
        bail!("--mode per-request sends one request per connection: --pipeline must be 1");
    }
    if mode == Mode::PerRequest && args.rate.is_some() {
        bail!("--rate paces persistent connections: it does not go with --mode per-request");
    }
    if args.timeout.is_zero() || args.connect_timeout.is_zero() {
        bail!("--timeout and --connect-timeout must be above zero");
    }
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let addr = resolve(&args.host, args.port)?;

    let max_packet =
        (args.payload_size as u64 + 2).max(asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE);
    let config = FrameConfig::new(args.header_size, args.byteorder, max_packet)?;
    let codec = FrameCodec::new(config);
    let request = Request::build(&codec, args.encoding, args.payload_size)?;
    let mut workload = Workload::new(codec, request, args.pipeline as usize, mode);
    // Each connection sends one request every `connections / rate` seconds.
    workload.pace = args
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(args.connections) / rate));
    // The TLS client configuration is built once, for every connection.
    let tls = match args.tls.options() {
        Some(options) => Some(TlsTarget {
            connector: asyncapy::tls::client_config(&options)?.into(),
            server_name: asyncapy::tls::server_name(&options, &args.host)?,
        }),
        None => None,
    };
    let target = Target {
        addr,
        connect_timeout: args.connect_timeout,
        reply_timeout: args.timeout,
        tls,
        resend: args.resend,
    };
    let warmup = args.warmup.unwrap_or(if args.requests.is_some() {
        Duration::ZERO
    } else {
        DEFAULT_WARMUP
    });
    let histogram = shared_histogram()?;
    let settings = Settings {
        target: addr.to_string(),
        tls: target.tls.is_some(),
        mode: match mode {
            Mode::Persistent => "persistent",
            Mode::PerRequest => "per-request",
        },
        encoding: args.encoding.as_str(),
        connections: args.connections as usize,
        pipeline: workload.pipeline,
        payload_size: args.payload_size,
        header_size: args.header_size,
        byteorder: args.byteorder.as_str(),
        threads,
        warmup_secs: warmup.as_secs_f64(),
        rate: args.rate,
        resend: args.resend,
    };
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();

    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;

    let plan = Plan {
        target,
        workload,
        warmup,
        duration: args.duration,
        requests: args.requests,
        connections: args.connections as usize,
        histogram,
        max_latency: args.timeout + args.connect_timeout,
        show_progress,
    };
    let (stats, elapsed) = runtime.block_on(plan.execute()).map_err(|reason| {
        anyhow::anyhow!("cannot connect to {addr}: {reason}; the run stopped with nothing measured")
    })?;
    let report = Report::new(settings, &stats, elapsed);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    let errors = report.errors.total;
    if errors > 0 {
        bail!(
            "{errors} error{} occurred during the run (see the report)",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// A request rate: a positive number of requests per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1e9 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate: give requests per second, above 0 (e.g. 5000 or 0.5)"
        )),
    }
}

/// Resolves `host:port` to its first address.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to no address"))
}

/// Everything a run needs, inside the runtime.
struct Plan {
    target: Target,
    workload: Workload,
    warmup: Duration,
    duration: Option<Duration>,
    requests: Option<u64>,
    connections: usize,
    /// Where every slot records latencies.
    histogram: SharedHistogram,
    /// Latencies above this are recorded as this.
    max_latency: Duration,
    show_progress: bool,
}

impl Plan {
    /// Runs every connection slot to the end: the merged figures and the
    /// measured time; or, when no connection could be made in a timed run,
    /// why the first attempt failed.
    async fn execute(self) -> Result<(Totals, Duration), String> {
        let start = Instant::now();
        let warmup_end = start + self.warmup;
        let stop = match self.requests {
            Some(n) => Stop::AfterRequests(AtomicU64::new(n)),
            None => Stop::At(warmup_end + self.duration.unwrap_or(DEFAULT_DURATION)),
        };
        let bar = self.progress_bar();
        let shared = Arc::new(Shared {
            target: self.target,
            workload: self.workload,
            schedule: Schedule { warmup_end, stop },
            progress: Progress::default(),
            reach: Reachability::new(self.connections),
        });
        let mut slots = tokio::task::JoinSet::new();
        for slot in 0..self.connections {
            let stats = ConnStats::new(Arc::clone(&self.histogram), self.max_latency);
            // With --rate, the connections' schedules are spread over one
            // interval, so that they do not all send at the same instants.
            let pacer = shared.workload.pace.map(|interval| {
                let offset = interval.mul_f64(slot as f64 / self.connections as f64);
                Pacer::new(interval, start + offset)
            });
            let driver = Driver::new(Arc::clone(&shared), stats, pacer);
            slots.spawn(driver.run());
        }

        let mut merged = Totals::new(&self.histogram);
        let mut ticker = tokio::time::interval(PROGRESS_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (start, 0u64);
        loop {
            tokio::select! {
                joined = slots.join_next() => match joined {
                    Some(Ok(mut stats)) => merged.add(&mut stats),
                    // A panicking slot is a bug; its figures are lost, the rest stand.
                    Some(Err(e)) => eprintln!("a connection slot failed: {e}"),
                    None => break,
                },
                reason = shared.reach.unreachable() => {
                    slots.abort_all();
                    bar.finish_and_clear();
                    return Err(reason);
                }
                _ = ticker.tick(), if !bar.is_hidden() => {
                    last = update_bar(&bar, &shared, warmup_end, last);
                }
            }
        }
        bar.finish_and_clear();
        merged.take_latencies(&self.histogram);

        let end = merged.finished.unwrap_or_else(Instant::now);
        let end = match shared.schedule.stop {
            Stop::At(stop) => end.min(stop),
            Stop::AfterRequests(_) => end,
        };
        Ok((merged, end.saturating_duration_since(warmup_end)))
    }

    fn progress_bar(&self) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        // The clock (the prefix) is the measured time: the warm-up is not
        // part of it, nor of the bar of a timed run.
        let (len, template) = match (self.requests, self.duration) {
            (Some(n), _) => (n, "{prefix} [{bar:30}] {pos}/{len} {msg}"),
            (None, duration) => (
                millis(duration.unwrap_or(DEFAULT_DURATION)),
                "{prefix} [{bar:30}] {msg}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(clock(Duration::ZERO))
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The progress display's clock: the measured time, in tenths of a second.
fn clock(measured: Duration) -> String {
    format!("{:5.1}s", measured.as_secs_f64())
}

/// The measured time at `now`: none during the warm-up, at most the run's
/// length once a timed run is over.
fn measured_at(now: Instant, warmup_end: Instant, stop: &Stop) -> Duration {
    let measured = now.saturating_duration_since(warmup_end);
    match stop {
        Stop::At(end) => measured.min(end.saturating_duration_since(warmup_end)),
        Stop::AfterRequests(_) => measured,
    }
}

/// Refreshes the display; returns the new (time, requests) reference point.
fn update_bar(
    bar: &ProgressBar,
    shared: &Shared,
    warmup_end: Instant,
    (last_time, last_requests): (Instant, u64),
) -> (Instant, u64) {
    let now = Instant::now();
    let (requests, errors) = shared.progress.snapshot();
    let dt = now.saturating_duration_since(last_time).as_secs_f64();
    let rate = if dt > 0.0 {
        (requests - last_requests.min(requests)) as f64 / dt
    } else {
        0.0
    };
    let measured = measured_at(now, warmup_end, &shared.schedule.stop);
    bar.set_prefix(clock(measured));
    match shared.schedule.stop {
        Stop::At(_) => bar.set_position(millis(measured)),
        Stop::AfterRequests(_) => bar.set_position(requests),
    }
    let phase = if now < warmup_end { "warming up, " } else { "" };
    bar.set_message(format!("{phase}{rate:.0} req/s, {errors} errors"));
    (now, requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_the_measured_time_only() {
        let start = Instant::now();
        let warmup_end = start + Duration::from_secs(1);
        let stop = Stop::At(warmup_end + Duration::from_secs(5));
        let at = |secs: f64| measured_at(start + Duration::from_secs_f64(secs), warmup_end, &stop);
        assert_eq!(at(0.5), Duration::ZERO);
        assert_eq!(at(3.5), Duration::from_millis(2500));
        assert_eq!(at(6.0), Duration::from_secs(5));
        assert_eq!(at(6.4), Duration::from_secs(5), "never past -d");
        assert_eq!(clock(at(6.4)), "  5.0s");
        let counted = Stop::AfterRequests(AtomicU64::new(1));
        let late = start + Duration::from_secs(60);
        assert_eq!(
            measured_at(late, warmup_end, &counted),
            Duration::from_secs(59)
        );
    }
}
