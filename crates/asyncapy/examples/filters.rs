//! The original's first filters example (AsyncAPY docs 1.4.1): a handler that
//! only sees packets with exactly the fields `foo` (digits) and `bar` (anything).
//!
//! ```sh
//! cargo run -p asyncapy --example filters [PORT]   # default 127.0.0.1:1500
//! ```
//!
//! `{"foo": 12355, "bar": "anything"}` reaches the handler; anything else gets
//! `ERR_NO_HANDLER`. Unlike Python's `re.match`, the pattern must match the
//! whole value: `{"foo": "12abc", "bar": 1}` does not pass.

use asyncapy::filters::Fields;
use asyncapy::{Client, Config, Packet, Server};

// This filter will match any digit in the 'foo' field,
// and anything in the 'bar' field, e.g.:
// {"foo": 12355, "bar": "anything"}
async fn filtered_handler(client: Client, packet: Packet) {
    println!("Look at this! {client} sent me {packet}!");
    // The seed's handler only closes; we also answer, so a client sees it passed.
    let _ = client.send(&packet).await;
    client.close().await;
}

/// The example's server, listening on 127.0.0.1:`port`.
pub(crate) fn server(port: u16) -> Result<Server, Box<dyn std::error::Error>> {
    let mut server = Server::new(Config {
        addr: "127.0.0.1".into(),
        port,
        ..Config::default()
    });
    server
        .add_handler(filtered_handler)
        .filter(Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)])?);
    Ok(server)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 1500,
    };
    server(port)?.start()?;
    Ok(())
}
