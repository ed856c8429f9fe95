//! `asyncapy serve`: the echo application, on the framework like any user's.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use asyncapy::{Client, Config, Packet, SendError, ServerBuilder};

/// Options of `asyncapy serve`. Flags override the configuration file, which
/// overrides the defaults.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// An AsyncAPY INI file with an [AsyncAPY] section.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    options: OptionFlags,
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
        for (key, value) in &self.options.given {
            config.set(key, value).map_err(|e| flag_error(key, &e))?;
        }
        let self_signed = self.tls.apply(&mut config)?;
        Ok((config, self_signed))
    }
}

/// A flag for every option of the configuration ([`asyncapy::config::OPTIONS`])
/// but `config` (the `--config` file, loaded first): the key with dashes
/// (`--max-packet-size`), its value given to [`Config::set`] as a line of the
/// file would be, so a bad value reads as the file's would. A `bool` option is
/// a flag without a value. The help is the option's doc line and default.
#[derive(Debug, Default)]
pub(crate) struct OptionFlags {
    /// The options given, as (key, value), in the option table's order.
    given: Vec<(&'static str, String)>,
}

impl OptionFlags {
    /// The options that are flags.
    fn options() -> impl Iterator<Item = &'static asyncapy::config::OptionInfo> {
        asyncapy::config::OPTIONS
            .iter()
            .filter(|option| option.key != "config")
    }

    /// The command-line form of `option`: every flag is `--key-with-dashes`;
    /// two have a short form, and files and lists say so.
    fn arg(option: &asyncapy::config::OptionInfo) -> clap::Arg {
        let plain = |text: &str| text.replace('`', "");
        let doc = plain(option.doc.strip_suffix('.').unwrap_or(option.doc));
        let help = match option.default {
            _ if option.switch => doc,
            "none" => doc,
            default => format!("{doc} [default: {}]", plain(default)),
        };
        let arg = clap::Arg::new(option.key)
            .long(option.key.replace('_', "-"))
            .help(help);
        if option.switch {
            return arg.action(clap::ArgAction::SetTrue);
        }
        let arg = match option.key {
            "port" => arg.short('p'),
            "timeout" => arg.short('t'),
            _ => arg,
        };
        let value_name = match option.key {
            "tls_cert" | "tls_key" | "tls_client_ca" => "FILE".to_owned(),
            "proxy_trusted" => "LIST".to_owned(),
            key => key.to_uppercase(),
        };
        arg.action(clap::ArgAction::Set).value_name(value_name)
    }
}

impl clap::FromArgMatches for OptionFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = OptionFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for option in OptionFlags::options() {
            let value = if option.switch {
                matches.get_flag(option.key).then(|| "true".to_owned())
            } else {
                matches.get_one::<String>(option.key).cloned()
            };
            if let Some(value) = value {
                self.given.retain(|(key, _)| *key != option.key);
                self.given.push((option.key, value));
            }
        }
        Ok(())
    }
}

impl clap::Args for OptionFlags {
    fn augment_args(command: clap::Command) -> clap::Command {
        OptionFlags::options().fold(command, |command, option| {
            command.arg(OptionFlags::arg(option))
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        OptionFlags::augment_args(command)
    }
}

/// A flag's value the configuration refused, naming the flag once: the
/// library's message names the key (`port: invalid value "abc": ...`), which
/// becomes `--port: invalid value "abc": ...`.
pub(crate) fn flag_error(key: &str, error: &asyncapy::ConfigError) -> anyhow::Error {
    let flag = format!("--{}", key.replace('_', "-"));
    let text = error.to_string();
    let text = text
        .strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(&text);
    anyhow::anyhow!("{flag}: {text}")
}

/// The echo handler: every packet goes back to its sender, in the session's encoding.
async fn echo(client: Client, packet: Packet) -> Result<(), SendError> {
    client.send(&packet).await
}

/// Runs the echo server until SIGINT or SIGTERM, as [`Server::start`] does
/// (on a runtime made first, which the key store needs too).
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (config, self_signed) = args.config()?;
    config.init_logging()?;
    let runtime = asyncapy::runtime(config.workers).context("cannot start the runtime")?;
    let mut builder = ServerBuilder::from_config(config);
    if let Some(self_signed) = &self_signed {
        builder = builder.tls(self_signed.tls.clone());
    }
    let mut server = builder.build()?;
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
    let described = self_signed.map(|self_signed| self_signed.describe());
    // Told once the server listens, with the signal handlers in place: a
    // SIGTERM from that line on is a graceful shutdown.
    server.on_ready(move |ready| {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", ready.addr)?;
        if let Some(metrics) = ready.metrics_addr {
            writeln!(stdout, "metrics on http://{metrics}/metrics")?;
        }
        if let Some(described) = &described {
            writeln!(stdout, "{described}")?;
        }
        stdout.flush()
    });
    runtime.block_on(server.run_until_signal())?;
    Ok(())
}
