//! The original's groups example (AsyncAPY docs 1.2.5 and 1.4.2): one packet,
//! two handlers. `echo_server_2` is in group -1, so it answers first; then
//! `echo_server` (group 0) answers again and closes the session.
//!
//! ```sh
//! cargo run -p asyncapy --example groups [PORT]   # default 127.0.0.1:1500
//! ```

use asyncapy::{Client, Config, Packet, SendError, Server};

async fn echo_server(client: Client, packet: Packet) -> Result<(), SendError> {
    println!("Hello world from {client}!");
    println!("Echoing back {packet}...");
    client.send(&packet).await?;
    client.close().await;
    Ok(())
}

async fn echo_server_2(client: Client, packet: Packet) -> Result<(), SendError> {
    println!("Hello world from {client} inside a group!");
    println!("Echoing back {packet}...");
    client.send(&packet).await
    // packet.stop_propagation(); // This would prevent the packet from being
    // forwarded to the next handler
}

/// The example's server, listening on 127.0.0.1:`port`.
pub(crate) fn server(port: u16) -> Server {
    let mut server = Server::new(Config {
        addr: "127.0.0.1".into(),
        port,
        ..Config::default()
    });
    server.add_handler(echo_server);
    server.add_handler(echo_server_2).group(-1);
    server
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 1500,
    };
    server(port).start()?;
    Ok(())
}
