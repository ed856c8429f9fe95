//! `asyncapy serve`: the echo application, on the framework like any user's.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use asyncapy::{Client, Config, Packet, SendError, Server};

/// Options of `asyncapy serve`. Flags override the configuration file, which
/// overrides the defaults.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// An AsyncAPY INI file with an [AsyncAPY] section.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to bind (default 127.0.0.1).
    #[arg(long)]
    addr: Option<String>,
    /// Port to bind (default 8081; 0 picks a free port).
    #[arg(short, long)]
    port: Option<String>,
    /// Bytes reserved for a session's first read (default 1024).
    #[arg(long)]
    buf: Option<String>,
    /// Seconds without a complete packet, or of one handler, before ERR_TIMED_OUT (default 60).
    #[arg(short, long)]
    timeout: Option<String>,
    /// Size of the Content-Length field in bytes, 1 to 8 (default 4).
    #[arg(long)]
    header_size: Option<String>,
    /// Byte order of the Content-Length field: big or little (default big).
    #[arg(long)]
    byteorder: Option<String>,
    /// Concurrent sessions per client IP, 0 for no limit (default 0).
    #[arg(long)]
    session_limit: Option<String>,
    /// Largest accepted Content-Length in bytes (default 8388608).
    #[arg(long)]
    max_packet_size: Option<String>,
    /// Most concurrent connections (default 10000).
    #[arg(long)]
    max_connections: Option<String>,
    /// Most bytes of unsent replies a session may hold (default 1048576).
    #[arg(long)]
    max_outbox: Option<String>,
    /// Runtime worker threads, 0 for one per core (default 0).
    #[arg(long)]
    workers: Option<String>,
    /// Seconds in-flight packets get to finish at shutdown (default 10).
    #[arg(long)]
    grace_period: Option<String>,
    /// Python logging level, number or name (default 20, INFO).
    #[arg(long)]
    logging_level: Option<String>,
    /// Python logging format of each line (default "[%(levelname)s] %(asctime)s %(message)s").
    #[arg(long)]
    console_format: Option<String>,
    /// strftime format of %(asctime)s (default "%d/%m/%Y %H:%M:%S %p").
    #[arg(long)]
    datefmt: Option<String>,
    /// Every connection starts with a PROXY protocol header (v1 or v2, as
    /// HAProxy and cloud load balancers send): the client it names is the
    /// session's peer. Connections without one are closed.
    #[arg(long)]
    proxy_protocol: bool,
    /// With --proxy-protocol: the proxies' addresses or CIDR ranges,
    /// comma-separated; connections from anywhere else are closed (default: any).
    #[arg(long, value_name = "LIST")]
    proxy_trusted: Option<String>,
    /// Answer each packet after this many milliseconds (simulated handler
    /// work, for testing and benchmarking slow handlers).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay: u64,
    /// Answer only packets whose field FIELD holds a live API key of --keys;
    /// others get ERR_NO_HANDLER.
    #[arg(long, value_name = "FIELD", requires = "keys")]
    require_key: Option<String>,
    #[command(flatten)]
    keys: crate::keys::StoreArgs,
    #[command(flatten)]
    tls: crate::tls::ServeTlsArgs,
}

impl ServeArgs {
    /// The configuration, and the certificate of `--tls-self-signed` if asked.
    fn config(&self) -> anyhow::Result<(Config, Option<crate::tls::SelfSigned>)> {
        let mut config = Config::default();
        if let Some(path) = &self.config {
            config.load_ini_file(path)?;
        }
        let flags = [
            ("addr", &self.addr),
            ("port", &self.port),
            ("buf", &self.buf),
            ("timeout", &self.timeout),
            ("header_size", &self.header_size),
            ("byteorder", &self.byteorder),
            ("session_limit", &self.session_limit),
            ("max_packet_size", &self.max_packet_size),
            ("max_connections", &self.max_connections),
            ("max_outbox", &self.max_outbox),
            ("workers", &self.workers),
            ("grace_period", &self.grace_period),
            ("logging_level", &self.logging_level),
            ("console_format", &self.console_format),
            ("datefmt", &self.datefmt),
            ("proxy_trusted", &self.proxy_trusted),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                config
                    .set(key, value)
                    .map_err(|e| crate::flags::flag_error(key, &e))?;
            }
        }
        if self.proxy_protocol {
            config.proxy_protocol = true;
        }
        let self_signed = self.tls.apply(&mut config)?;
        config.validate()?;
        Ok((config, self_signed))
    }
}

/// The echo handler: every packet goes back to its sender, in the session's encoding.
async fn echo(client: Client, packet: Packet) -> Result<(), SendError> {
    client.send(&packet).await
}

/// Runs the echo server until SIGINT or SIGTERM.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (config, self_signed) = args.config()?;
    asyncapy::logging::init(&config)?;
    let workers = config.workers;
    let mut server = Server::new(config);
    if let Some(self_signed) = &self_signed {
        server.tls(self_signed.tls.clone());
    }
    let runtime = asyncapy::server::runtime(workers).context("cannot start the runtime")?;
    let route = match args.delay {
        0 => server.register_handler(echo),
        ms => {
            // Simulated handler work, for tests and benchmarks of slow handlers.
            let delay = std::time::Duration::from_millis(ms);
            server.register_handler(move |client: Client, packet: Packet| async move {
                tokio::time::sleep(delay).await;
                client.send(&packet).await
            })
        }
    };
    if let Some(field) = &args.require_key {
        let store = runtime.block_on(args.keys.open())?;
        let factory = asyncapy::keys::ApiKeyFactory::from_arc(store);
        route.filter(asyncapy::filters::ApiKey::new(factory, field.as_str()));
        tracing::info!(
            "API keys required in {field:?}, from {}",
            args.keys.describe()
        );
    } else if args.keys.keys.is_some() {
        anyhow::bail!("--keys needs --require-key FIELD: the field packets carry their key in");
    }
    runtime.block_on(async move {
        let running = server.bind().await?;
        // The signal handlers first: once "listening on" is out, a SIGTERM
        // must get a graceful shutdown, not the default action.
        running.shutdown_on_signal()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", running.local_addr())?;
        if let Some(self_signed) = &self_signed {
            writeln!(stdout, "{}", self_signed.describe())?;
        }
        stdout.flush()?;
        drop(stdout);
        running.wait().await?;
        Ok(())
    })
}
