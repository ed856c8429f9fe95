//! `asyncapy send`: send packets to a server and print the replies.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use asyncapy::asyncaproto::{ByteOrder, Encoding, Map};
use asyncapy::client::{BlockingClient, ClientConfig};

/// Options of `asyncapy send`.
#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    /// Packets to send, each a JSON object. Without any (and without --file),
    /// packets are read from standard input, one JSON object per line.
    packets: Vec<String>,
    /// Read packets from FILE, one JSON object per line ("-" for standard input).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short, long, default_value_t = 8081)]
    port: u16,
    /// Payload encoding: json or ziproto.
    #[arg(short, long, default_value = "json")]
    encoding: Encoding,
    /// Size of the Content-Length field in bytes, 1 to 8.
    #[arg(long, default_value_t = 4)]
    header_size: u8,
    /// Byte order of the Content-Length field: big or little.
    #[arg(long, default_value = "big")]
    byteorder: ByteOrder,
    /// Seconds to wait for the connection and for each reply.
    #[arg(short, long, default_value_t = 60.0)]
    timeout: f64,
    /// Print each reply on one line instead of pretty-printed.
    #[arg(short, long)]
    compact: bool,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
}

/// The packets to send, from the arguments, a file, or standard input.
fn packets(args: &SendArgs) -> anyhow::Result<Vec<String>> {
    let from_lines = |reader: &mut dyn BufRead| -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for line in reader.lines() {
            let line = line.context("cannot read the packets")?;
            if !line.trim().is_empty() {
                out.push(line);
            }
        }
        Ok(out)
    };
    let mut packets = args.packets.clone();
    match &args.file {
        Some(path) if path.as_os_str() == "-" => {
            packets.extend(from_lines(&mut std::io::stdin().lock())?)
        }
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            packets.extend(from_lines(&mut std::io::BufReader::new(file))?);
        }
        None if packets.is_empty() => packets.extend(from_lines(&mut std::io::stdin().lock())?),
        None => {}
    }
    Ok(packets)
}

fn render(map: &Map, compact: bool) -> anyhow::Result<String> {
    if compact {
        Ok(map.to_string())
    } else {
        Ok(serde_json::to_string_pretty(map)?)
    }
}

/// Sends every packet in order on one session, printing each reply.
pub(crate) fn run(args: SendArgs) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let packets = packets(&args)?;
    if packets.is_empty() {
        bail!("no packet to send");
    }
    // Every packet is checked before anything is sent.
    let mut maps = Vec::with_capacity(packets.len());
    for (i, text) in packets.iter().enumerate() {
        let map = Encoding::Json
            .decode(text.as_bytes())
            .with_context(|| format!("packet {} is not a JSON object: {text}", i + 1))?;
        maps.push(map);
    }
    let mut config = ClientConfig::new()
        .encoding(args.encoding)
        .header_size(args.header_size)
        .byteorder(args.byteorder)
        .timeout(Duration::from_secs_f64(args.timeout));
    if let Some(tls) = args.tls.options() {
        config = config.tls(tls);
    }
    let mut client = BlockingClient::connect_to(&args.host, args.port, config)?;
    let mut stdout = std::io::stdout().lock();
    for (i, map) in maps.iter().enumerate() {
        let reply = client
            .request(map)
            .with_context(|| format!("packet {}", i + 1))?;
        writeln!(stdout, "{}", render(&reply, args.compact)?)?;
        stdout.flush()?;
    }
    client.disconnect()?;
    Ok(())
}
