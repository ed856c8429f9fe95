//! The original's "Hello, world!" (AsyncAPY docs 1.2.2): an echo server.
//!
//! ```sh
//! cargo run -p asyncapy --example hello_world          # 127.0.0.1:1500
//! cargo run -p asyncapy --example hello_world -- 1600  # another port
//! ```
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

/// The example's server, listening on 127.0.0.1:`port`.
pub(crate) fn server(port: u16) -> Server {
    let mut server = Server::new(Config {
        addr: "127.0.0.1".into(),
        port,
        ..Config::default()
    });
    server.register_handler(echo_server); // Register our handler
    server
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 1500,
    };
    server(port).start()?; // Start the server
    Ok(())
}
