//! The handler model over real sockets: state, typed requests and their
//! rejections (with groups), replies and failures a handler chooses, and
//! values filters hand on.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::extract::{Extension, Payload, State};
use asyncapy::filters::{ApiKey, ApiKeyInfo};
use asyncapy::keys::ApiKeyFactory;
use asyncapy::{Check, Client, Failure, Filter, Packet, Server, ServerError};
use common::*;

#[derive(Clone, Default)]
struct AppState {
    hits: Arc<AtomicUsize>,
    /// Filled by the setup hook.
    greeting: Arc<OnceLock<String>>,
    /// What the shutdown hook saw.
    at_shutdown: Arc<Mutex<Option<usize>>>,
}

async fn hit(State(state): State<AppState>, client: Client) -> Result<(), asyncapy::SendError> {
    let hits = state.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let greeting = state.greeting.get().cloned().unwrap_or_default();
    client
        .send(map(&[
            ("hits", Value::from(hits)),
            ("greeting", Value::from(greeting)),
        ]))
        .await
}

#[tokio::test]
async fn state_is_shared_by_handlers_filled_by_setup_and_seen_at_shutdown() {
    let state = AppState::default();
    let mut server = Server::new(test_config());
    server.with_state(state.clone());
    server.on_setup(|State(state): State<AppState>| async move {
        state.greeting.set("hello".to_owned()).unwrap();
    });
    server.on_shutdown(|State(state): State<AppState>| async move {
        *state.at_shutdown.lock().unwrap() = Some(state.hits.load(Ordering::SeqCst));
    });
    server.add_handler(hit);
    let running = server.bind().await.unwrap();
    for expected in 1..=3usize {
        let mut client = RawClient::connect(running.local_addr()).await;
        let (_, reply) = client.request(Encoding::Json, &map(&[])).await;
        assert_eq!(reply["hits"], Value::from(expected));
        assert_eq!(reply["greeting"], Value::from("hello"));
    }
    running.handle().shutdown();
    running.wait().await.unwrap();
    assert_eq!(*state.at_shutdown.lock().unwrap(), Some(3));
}

#[tokio::test]
async fn state_can_be_built_at_start_up() {
    let mut server = Server::new(test_config());
    server.with_state_from(|| async {
        let state = AppState::default();
        state.greeting.set("built".to_owned()).unwrap();
        Ok::<_, std::io::Error>(state)
    });
    server.add_handler(hit);
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let (_, reply) = client.request(Encoding::Json, &map(&[])).await;
    assert_eq!(reply["greeting"], Value::from("built"));

    let mut failing = Server::new(test_config());
    failing.with_state_from(|| async { Err::<AppState, _>(std::io::Error::other("no database")) });
    failing.add_handler(hit);
    let err = failing.bind().await.err().unwrap();
    assert_eq!(err.to_string(), "setup failed: no database");
}

#[tokio::test]
async fn a_handler_asking_for_a_state_the_server_lacks_fails_the_bind() {
    let mut server = Server::new(test_config());
    server.add_handler(hit);
    let err = server.bind().await.err().unwrap();
    assert!(matches!(err, ServerError::State { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "hit takes State<handler_model::AppState>, but the server's state is none (see Server::with_state)"
    );
    let mut server = Server::new(test_config());
    server.with_state(42u32);
    server.add_handler(hit);
    let err = server.bind().await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "hit takes State<handler_model::AppState>, but the server's state is u32"
    );
}

#[derive(serde::Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(serde::Deserialize)]
struct Negate {
    n: i64,
}

#[tokio::test]
async fn a_payload_that_does_not_fit_is_refused_before_the_handler_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let mut server = Server::new(test_config());
    server.add_handler(move |Payload(add): Payload<Add>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { map(&[("sum", Value::from(add.a + add.b))]) }
    });
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let (_, reply) = client
        .request(
            Encoding::ZiProto,
            &map(&[("a", Value::from(2)), ("b", Value::from(40))]),
        )
        .await;
    assert_eq!(reply, map(&[("sum", Value::from(42))]));
    // A missing field, then a wrong type: the client's fault.
    for bad in [
        map(&[("a", Value::from(2))]),
        map(&[("a", Value::from("two")), ("b", Value::from(1))]),
    ] {
        let mut client = RawClient::connect(running.local_addr()).await;
        client.send(Encoding::ZiProto, &bad).await;
        client
            .expect_failure_then_close(ErrorCode::RequestMalformed, Encoding::ZiProto)
            .await;
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the handler ran for the good packet only"
    );
}

#[tokio::test]
async fn a_refused_payload_goes_on_to_the_next_handler_and_later_groups() {
    let mut server = Server::new(test_config());
    // Group 0: two typed handlers; the first that fits runs.
    server.add_handler(|Payload(add): Payload<Add>| async move {
        map(&[("sum", Value::from(add.a + add.b))])
    });
    server.add_handler(|Payload(neg): Payload<Negate>| async move {
        map(&[("neg", Value::from(-neg.n))])
    });
    // Group 1: a typed handler for packets carrying "log".
    server
        .add_handler(|client: Client, packet: Packet| async move {
            if packet.contains_key("log") {
                client.send(map(&[("logged", Value::from(true))])).await?;
            }
            Ok::<(), asyncapy::SendError>(())
        })
        .group(1);
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let (_, reply) = client
        .request(Encoding::Json, &map(&[("n", Value::from(5))]))
        .await;
    assert_eq!(reply, map(&[("neg", Value::from(-5))]));
    // Fits neither handler of group 0, but group 1 runs: no failure reply.
    let (_, reply) = client
        .request(Encoding::Json, &map(&[("log", Value::Null)]))
        .await;
    assert_eq!(reply, map(&[("logged", Value::from(true))]));
    // A packet that fits no handler of a server with no other group:
    // ERR_REQUEST_MALFORMED, not ERR_NO_HANDLER.
    let mut lone = Server::new(test_config());
    lone.add_handler(|Payload(add): Payload<Add>| async move {
        map(&[("sum", Value::from(add.a + add.b))])
    });
    let running = lone.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    client
        .send(Encoding::Json, &map(&[("x", Value::from(1))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::RequestMalformed, Encoding::Json)
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_payload_is_logged_as_a_client_error_naming_the_field() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut server = Server::new(test_config());
    server.add_handler(|Payload(add): Payload<Add>| async move {
        map(&[("sum", Value::from(add.a + add.b))])
    });
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    client
        .send(Encoding::Json, &map(&[("a", Value::from(1))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::RequestMalformed, Encoding::Json)
        .await;
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("Refusing packet"))
        .unwrap_or_else(|| panic!("no refusal in:\n{log}"));
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("missing field `b`"), "{line}");
    assert!(
        !log.contains("ERROR"),
        "no server error for a client's mistake:\n{log}"
    );
}

#[tokio::test]
async fn handlers_return_replies_and_choose_their_failures() {
    let mut server = Server::new(test_config());
    server.add_handler(|packet: Packet| async move {
        match packet.get("do").and_then(Value::as_str) {
            Some("echo") => Ok(Some(packet)),
            Some("deny") => Err(Failure::new("ERR_UNAUTHORIZED")),
            Some("warn") => Err(Failure::new("ERR_SLOW_DOWN").keep_open()),
            Some("protocol") => Err(Failure::from(ErrorCode::ShuttingDown)),
            _ => Ok(None),
        }
    });
    // Through `?` into a boxed error: the failure keeps its code; any other
    // error is ERR_HANDLER_FAILED without its detail.
    server
        .add_handler(|packet: Packet| async move {
            if packet.contains_key("boxed") {
                Err(Failure::new("ERR_BOXED"))?;
            }
            if packet.contains_key("internal") {
                Err(std::io::Error::other("secret detail"))?;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .group(1);
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();

    let mut client = RawClient::connect(addr).await;
    let echo = map(&[("do", Value::from("echo"))]);
    assert_eq!(client.request(Encoding::ZiProto, &echo).await.1, echo);
    // Kept open: the failure reply, then the session goes on.
    let (encoding, reply) = client
        .request(Encoding::ZiProto, &map(&[("do", Value::from("warn"))]))
        .await;
    assert_eq!(encoding, Encoding::ZiProto);
    assert_eq!(reply, failure("ERR_SLOW_DOWN"));
    assert_eq!(client.request(Encoding::ZiProto, &echo).await.1, echo);
    // The default closes.
    let (_, reply) = client
        .request(Encoding::ZiProto, &map(&[("do", Value::from("deny"))]))
        .await;
    assert_eq!(reply, failure("ERR_UNAUTHORIZED"));
    client.expect_closed().await;

    let mut client = RawClient::connect(addr).await;
    client
        .send(Encoding::Json, &map(&[("do", Value::from("protocol"))]))
        .await;
    client
        .expect_failure_then_close(ErrorCode::ShuttingDown, Encoding::Json)
        .await;

    let mut client = RawClient::connect(addr).await;
    let (_, reply) = client
        .request(Encoding::Json, &map(&[("boxed", Value::Null)]))
        .await;
    assert_eq!(reply, failure("ERR_BOXED"));
    client.expect_closed().await;

    let mut client = RawClient::connect(addr).await;
    client
        .send(Encoding::Json, &map(&[("internal", Value::Null)]))
        .await;
    let frame = client.read_frame().await.unwrap();
    assert!(!String::from_utf8_lossy(&frame.payload).contains("secret"));
    let reply = frame.encoding.decode(&frame.payload).unwrap();
    assert_eq!(ErrorCode::from_map(&reply), Some(ErrorCode::HandlerFailed));
}

fn failure(code: &str) -> Map {
    map(&[
        ("status", Value::from("failure")),
        ("error", Value::from(code)),
    ])
}

#[derive(Clone, Debug, PartialEq)]
struct UserId(i64);

/// Passes packets with a numeric "uid", handing it on; `later` answers
/// through a future, as a filter needing I/O would.
struct HasUser {
    later: bool,
}

impl Filter for HasUser {
    fn check(&self, _: &Client, packet: &Packet) -> Check {
        let uid = packet.get("uid").and_then(Value::as_i64);
        if self.later {
            return Check::later_with(async move {
                tokio::task::yield_now().await;
                uid.map(UserId)
            });
        }
        match uid {
            Some(uid) => Check::pass_with(UserId(uid)),
            None => Check::Fail,
        }
    }
}

#[tokio::test]
async fn filters_hand_what_they_found_to_the_handler() {
    for later in [false, true] {
        let mut server = Server::new(test_config());
        server
            .add_handler(|Extension(UserId(uid)): Extension<UserId>| async move {
                map(&[("uid", Value::from(uid))])
            })
            .filter(HasUser { later });
        let running = server.bind().await.unwrap();
        let mut client = RawClient::connect(running.local_addr()).await;
        let (_, reply) = client
            .request(Encoding::Json, &map(&[("uid", Value::from(7))]))
            .await;
        assert_eq!(reply, map(&[("uid", Value::from(7))]), "later: {later}");
        client
            .send(Encoding::Json, &map(&[("uid", Value::from("x"))]))
            .await;
        client
            .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
            .await;
    }
}

#[tokio::test]
async fn the_api_key_filter_hands_on_the_key_s_metadata() {
    let factory = ApiKeyFactory::new();
    let key = factory
        .issue(Map::from_iter([("user", "ada")]))
        .await
        .unwrap();
    let mut server = Server::new(test_config());
    server
        .add_handler(
            |key: ApiKeyInfo| async move { map(&[("user", key.metadata["user"].clone())]) },
        )
        .filter(ApiKey::new(factory.clone(), "api_key"));
    let running = server.bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let (_, reply) = client
        .request(
            Encoding::Json,
            &map(&[("api_key", Value::from(key.as_str()))]),
        )
        .await;
    assert_eq!(reply, map(&[("user", Value::from("ada"))]));
    // Updated metadata is what the next packet sees.
    factory
        .update(&key, Map::from_iter([("user", "grace")]))
        .await
        .unwrap();
    let (_, reply) = client
        .request(
            Encoding::Json,
            &map(&[("api_key", Value::from(key.as_str()))]),
        )
        .await;
    assert_eq!(reply, map(&[("user", Value::from("grace"))]));
}

#[tokio::test]
async fn a_rejection_that_is_the_server_s_fault_is_err_handler_failed() {
    use asyncapy::extract::Rejection;
    let mut server = Server::new(test_config());
    // An Extension no filter of the handler provides: the server's mistake.
    server
        .add_handler(|Extension(UserId(uid)): Extension<UserId>| async move {
            map(&[("uid", Value::from(uid))])
        })
        .filter(|_: &Client, p: &Packet| p.contains_key("no_filter_value"));
    // A handler refusing a request for a reason of the server's own.
    server
        .add_handler(|packet: Packet| async move {
            if packet.contains_key("internal") {
                return Err::<(), _>(Rejection::internal("the cache is not warm yet"));
            }
            Err(Rejection::malformed("needs \"internal\""))
        })
        .group(1);
    let running = server.bind().await.unwrap();
    for (request, code) in [
        (
            map(&[("no_filter_value", Value::Null)]),
            ErrorCode::HandlerFailed,
        ),
        (map(&[("internal", Value::Null)]), ErrorCode::HandlerFailed),
        (map(&[("other", Value::Null)]), ErrorCode::RequestMalformed),
    ] {
        let mut client = RawClient::connect(running.local_addr()).await;
        client.send(Encoding::Json, &request).await;
        client.expect_failure_then_close(code, Encoding::Json).await;
    }
}
