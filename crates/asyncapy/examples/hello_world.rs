//! The original's "Hello, world!" (AsyncAPY docs 1.2.2): an echo server.
//!
//! ```sh
//! cargo run -p asyncapy --example hello_world          # 127.0.0.1:1500
//! cargo run -p asyncapy --example hello_world -- 1600  # another port
//! cargo run -p asyncapy --example hello_world -- 0 config.ini
//! ```
//!
//! A second argument names an AsyncAPY `config.ini` (the original's
//! `Server(config="config.ini")`): its `[AsyncAPY]` options apply over the
//! address and port above (port 0 picks a free one; the `Serving on ADDR`
//! log line tells which).
//!
//! Every packet is printed and sent back, then the session is closed, as in the
//! Python original.

use asyncapy::{Client, Config, Packet, SendError, Server};

async fn echo_server(client: Client, packet: Packet) -> Result<(), SendError> {
    println!("Hello world from {client}!");
    println!("Echoing back {packet}...");
    client.send(&packet).await?;
    client.close().await;
    Ok(())
}

/// The example's configuration: 127.0.0.1:`port`.
fn config(port: u16) -> Config {
    Config {
        addr: "127.0.0.1".into(),
        port,
        ..Config::default()
    }
}

/// The example's server, listening on 127.0.0.1:`port`.
pub(crate) fn server(port: u16) -> Server {
    with_config(config(port))
}

fn with_config(config: Config) -> Server {
    let mut server = Server::new(config);
    server.register_handler(echo_server); // Register our handler
    server
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = match args.next() {
        Some(port) => port.parse()?,
        None => 1500,
    };
    let server = match args.next() {
        Some(path) => {
            let mut config = config(port);
            config.load_ini_file(path)?; // its options over the example's
            with_config(config)
        }
        None => server(port),
    };
    server.start()?; // Start the server
    Ok(())
}
