//! The original's second filters example (AsyncAPY docs 1.4.1): several
//! filters on one handler, all of which must pass — the fields, and the
//! client's address (localhost or 151.53.88.15, given as ONE `Ip` filter with
//! a list: two `Ip` filters could never both pass, see FAQ 1.3.2).
//!
//! ```sh
//! cargo run -p asyncapy --example more_filters [PORT]   # default 127.0.0.1:1500
//! ```

use asyncapy::filters::{Fields, Ip};
use asyncapy::{Client, Config, Packet, Server};

// This filter will match any digit in the 'foo' field,
// and anything in the 'bar' field, e.g.:
// {"foo": 12355, "bar": "123lmao"}
// Also, only packets coming from localhost (127.0.0.1) and from 151.53.88.15
// will reach this handler.
async fn filtered_handler(client: Client, packet: Packet) {
    println!("{client} passed both filters with {packet}");
    let _ = client.send(&packet).await;
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
        .filter(Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)])?)
        .filter(Ip::new(["127.0.0.1", "151.53.88.15"])?);
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
