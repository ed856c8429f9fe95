//! API keys: a handler that only answers packets carrying a live key in their
//! `api_key` field (the original's `Filters.APIFactory` over an `APIKeyFactory`).
//!
//! ```sh
//! cargo run -p asyncapy --example api_keys [PORT]   # default 127.0.0.1:1500
//! ```
//!
//! It issues one key at start and prints it; send
//! `{"api_key": "<the key>", "action": "whoami"}` to get the key's metadata back,
//! `{"api_key": "<the key>", "action": "rotate"}` to get a new key (the old one
//! stops working at once). Anything without a valid key gets `ERR_NO_HANDLER`.

use asyncapy::asyncaproto::Map;
use asyncapy::filters::ApiKey;
use asyncapy::keys::ApiKeyFactory;
use asyncapy::{Client, Config, Packet, Server};

/// The example's server on 127.0.0.1:`port`, and the key it issued.
pub(crate) async fn server(port: u16) -> Result<(Server, String), Box<dyn std::error::Error>> {
    let factory = ApiKeyFactory::new();
    let mut metadata = Map::new();
    metadata.insert("user", "ada");
    let key = factory.issue(metadata).await?;

    let mut server = Server::new(Config {
        addr: "127.0.0.1".into(),
        port,
        ..Config::default()
    });
    let keys = factory.clone();
    server
        .add_handler(move |client: Client, packet: Packet| {
            let keys = keys.clone();
            async move {
                let key = packet["api_key"].as_str().unwrap_or_default().to_owned();
                let mut reply = Map::new();
                match packet["action"].as_str() {
                    Some("rotate") => {
                        reply.insert("api_key", keys.reissue(&key).await?);
                    }
                    _ => {
                        reply.insert("metadata", keys.get(&key).await?);
                    }
                }
                client.send(reply).await?;
                Ok::<(), asyncapy::HandlerError>(())
            }
        })
        .filter(ApiKey::new(factory, "api_key"));
    Ok((server, key))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 1500,
    };
    let (server, key) = server(port).await?;
    println!("issued key: {key}");
    let running = server.bind().await?;
    running.shutdown_on_signal()?;
    println!("listening on {}", running.local_addr());
    running.wait().await?;
    Ok(())
}
