//! The server: configuration in, a bound listener, one task per session, and a
//! graceful shutdown.
//!
//! ```
//! use asyncapy::{Client, Config, Packet, Server};
//!
//! async fn echo(client: Client, packet: Packet) -> Result<(), asyncapy::SendError> {
//!     client.send(&packet).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = Server::new(Config { port: 0, ..Config::default() });
//! server.register_handler(echo);
//! let running = server.bind().await?;
//! println!("listening on {}", running.local_addr());
//! running.handle().shutdown();
//! running.wait().await?;
//! # Ok(())
//! # }
//! ```

mod admission;
mod builder;
mod listener;
pub(crate) mod session_loop;
pub(crate) mod shutdown;
mod thread_spares;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod transport;

pub use builder::ServerBuilder;

use std::any::{Any, TypeId};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use asyncaproto::FrameCodec;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError};
use crate::dispatch::{erase, Dispatcher, Handler, HandlerError, Outcome, Route};
use crate::extract::{AppState, FromRequest, Rejection, State};
use crate::packet::Packet;
use crate::session::Client;
use crate::session::Registry;
pub(crate) use shutdown::Shutdown;

/// What the session tasks share.
pub(crate) struct ServerContext {
    pub(crate) config: Config,
    pub(crate) codec: FrameCodec,
    pub(crate) dispatcher: Dispatcher,
    /// The application's state ([`Server::with_state`]), for `State` arguments.
    pub(crate) state: AppState,
    /// The shutdown signal, and through it the registry of live sessions.
    pub(crate) shutdown: Arc<Shutdown>,
    /// One permit per open connection (`max_connections` in all).
    pub(crate) permits: Arc<Semaphore>,
    /// Set when the server speaks TLS: every connection starts with a handshake.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// The server's metrics (`metrics_addr`).
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The per-client-IP rate limit (`rate_limit`), in local memory.
    pub(crate) rate: Option<crate::limits::LocalRate>,
    /// The shared limits store (`limits_store`): `rate_limit` and
    /// `session_limit` are kept there instead.
    pub(crate) shared: Option<Arc<crate::limits::SharedLimits>>,
}

#[cfg(test)]
impl ServerContext {
    /// A context for the server's unit tests: `config`, `dispatcher`, one
    /// connection permit, and no TLS, metrics or limits.
    pub(crate) fn for_tests(
        config: Config,
        dispatcher: Dispatcher,
        shutdown: Arc<Shutdown>,
    ) -> ServerContext {
        ServerContext {
            config,
            codec: FrameCodec::default(),
            dispatcher,
            state: None,
            shutdown,
            permits: Arc::new(Semaphore::new(1)),
            #[cfg(feature = "tls")]
            tls: None,
            metrics: None,
            rate: None,
            shared: None,
        }
    }
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address does not resolve.
    #[error("cannot resolve address {addr}: {source}")]
    Resolve {
        /// `addr:port` as configured.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The address cannot be bound (in use, not local, no permission...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `addr:port` as configured.
        addr: String,
        /// The system's error.
        source: io::Error,
    },
    /// A setup hook failed.
    #[error("setup failed: {0}")]
    Setup(HandlerError),
    /// No handler was registered: every packet would be refused.
    #[error("no handler registered")]
    NoHandlers,
    /// A handler or hook takes a `State<S>` the server does not have.
    #[error("{who} takes State<{wanted}>, but the server's state is {have}")]
    State {
        /// The handler (by name) or hook.
        who: String,
        /// The state type it takes.
        wanted: &'static str,
        /// The server's state type.
        have: &'static str,
    },
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// The server task panicked or was cancelled.
    #[error("the server task ended abnormally: {0}")]
    Task(tokio::task::JoinError),
    /// The SIGINT / SIGTERM handlers could not be installed.
    #[error("cannot watch for SIGINT and SIGTERM: {0}")]
    Signal(io::Error),
}

/// A lifecycle hook, ready to run: `setup` runs before the server binds,
/// `shutdown` after it has stopped. It takes its arguments from the state.
pub(crate) type BoxedHook = Box<dyn FnOnce(&AppState) -> Result<HookFuture, Rejection> + Send>;

/// A running hook.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// What makes the state at start-up ([`Server::with_state_from`]).
type StateFactory = Box<
    dyn FnOnce() -> Pin<
            Box<dyn Future<Output = Result<Arc<dyn Any + Send + Sync>, HandlerError>> + Send>,
        > + Send,
>;

/// A lifecycle hook ([`Server::on_setup`], [`Server::on_shutdown`]): an
/// async closure of no argument, or of the server's [`State<S>`], returning
/// `()` or a `Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a setup or shutdown hook",
    note = "a hook is `|| async {{ ... }}` or `|state: State<S>| async move {{ ... }}`, returning `()` or `Result<(), E>`"
)]
pub trait Hook<Args>: Send + 'static {
    /// The hook, boxed, with the state type it needs.
    #[doc(hidden)]
    fn boxed(self) -> (BoxedHook, Option<(TypeId, &'static str)>);
}

/// What a setup or shutdown hook returns: `()`, or `Result<(), E>` with any
/// error type (an error is the hook's failure).
pub trait IntoHookResult {
    /// The hook's result.
    fn into_hook_result(self) -> Result<(), HandlerError>;
}

impl IntoHookResult for () {
    fn into_hook_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHookResult for Result<(), E> {
    fn into_hook_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

impl<F, Fut> Hook<()> for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHookResult,
{
    fn boxed(self) -> (BoxedHook, Option<(TypeId, &'static str)>) {
        let hook: BoxedHook = Box::new(move |_: &AppState| {
            let fut = self();
            Ok(Box::pin(async move { fut.await.into_hook_result() }) as HookFuture)
        });
        (hook, None)
    }
}

impl<F, Fut, S> Hook<(State<S>,)> for F
where
    F: FnOnce(State<S>) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHookResult,
    S: Clone + Send + Sync + 'static,
{
    fn boxed(self) -> (BoxedHook, Option<(TypeId, &'static str)>) {
        let hook: BoxedHook = Box::new(move |state: &AppState| {
            let state = state
                .as_deref()
                .and_then(|state| state.downcast_ref::<S>())
                .cloned()
                .ok_or_else(|| {
                    Rejection::internal(format!(
                        "the server has no state of type {}",
                        std::any::type_name::<S>()
                    ))
                })?;
            let fut = self(State(state));
            Ok(Box::pin(async move { fut.await.into_hook_result() }) as HookFuture)
        });
        (hook, State::<S>::required_state())
    }
}

/// An AsyncAPY server: its configuration, its handlers, its state and its
/// lifecycle hooks.
pub struct Server {
    config: Config,
    dispatcher: Dispatcher,
    state: AppState,
    /// The state's type, once given (or promised by a factory).
    state_type: Option<(TypeId, &'static str)>,
    state_factory: Option<StateFactory>,
    setup: Vec<BoxedHook>,
    shutdown: Vec<BoxedHook>,
    /// The state types the hooks need.
    hook_states: Vec<(&'static str, TypeId, &'static str)>,
    /// Told the address once the server listens ([`Server::on_ready`]).
    ready: Vec<ReadyHook>,
    #[cfg(feature = "tls")]
    tls: Option<tls::ServerTls>,
}

/// A ready hook ([`Server::on_ready`]), boxed.
type ReadyHook = Box<dyn FnOnce(Ready) -> Result<(), HandlerError> + Send>;

/// What a [`Server::on_ready`] hook is told: where the server listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ready {
    /// The address the listener is bound to (with the real port when 0 was
    /// asked), as [`RunningServer::local_addr`].
    pub addr: SocketAddr,
    /// The address `GET /metrics` is served on, as
    /// [`RunningServer::metrics_addr`]; `None` without `metrics_addr`.
    pub metrics_addr: Option<SocketAddr>,
}

impl Server {
    /// A server with `config` and no handlers yet.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            dispatcher: Dispatcher::default(),
            state: None,
            state_type: None,
            state_factory: None,
            setup: Vec::new(),
            shutdown: Vec::new(),
            hook_states: Vec::new(),
            ready: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Reads the TLS files of the configuration's `tls_*` options, unless the
    /// server has its TLS already ([`Server::tls`], or an earlier call): the
    /// files are read once, by [`ServerBuilder::build`] or else by
    /// [`Server::bind`]. An error names the option.
    pub(crate) fn load_tls(&mut self) -> Result<(), ConfigError> {
        #[cfg(feature = "tls")]
        if self.tls.is_none() {
            self.tls = tls::ServerTls::from_config(&self.config)?;
        }
        Ok(())
    }

    /// Serves TLS with `tls` (feature `tls`), whatever the configuration's
    /// `tls_*` paths say. Every connection then starts with a handshake,
    /// bounded by `timeout`; a client that fails it (or does not speak TLS) is
    /// logged with its address and dropped.
    ///
    /// ```no_run
    /// use asyncapy::tls::ServerTls;
    /// use asyncapy::{Config, Server};
    /// # async fn echo(c: asyncapy::Client, p: asyncapy::Packet) { let _ = c.send(&p).await; }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = Server::new(Config::default());
    /// server.tls(ServerTls::from_pem_files("cert.pem", "key.pem", None)?);
    /// server.register_handler(echo);
    /// server.start()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(&mut self, tls: tls::ServerTls) -> &mut Server {
        self.tls = Some(tls);
        self
    }

    /// Gives handlers `state`: a handler argument [`State<S>`] receives a
    /// clone of it for each packet (put what is shared behind an `Arc`: a
    /// pool, a cache, counters). Setup and shutdown hooks can take it too.
    /// A handler or hook asking for a state of another type makes
    /// [`Server::bind`] fail, naming both types.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use asyncapy::asyncaproto::{Map, Value};
    /// use asyncapy::extract::State;
    /// use asyncapy::{Client, Server};
    ///
    /// #[derive(Clone, Default)]
    /// struct AppState {
    ///     visits: Arc<Mutex<u64>>,
    /// }
    ///
    /// async fn count(State(state): State<AppState>, client: Client) -> Result<(), asyncapy::SendError> {
    ///     let visits = {
    ///         let mut visits = state.visits.lock().unwrap();
    ///         *visits += 1;
    ///         *visits
    ///     };
    ///     client.send(Map::from_iter([("visits", Value::from(visits))])).await
    /// }
    ///
    /// let mut server = Server::builder().port(0).build()?;
    /// server.with_state(AppState::default());
    /// server.add_handler(count);
    /// server.on_shutdown(|State(state): State<AppState>| async move {
    ///     println!("{} visits", state.visits.lock().unwrap());
    /// });
    /// # Ok::<(), asyncapy::ServerError>(())
    /// ```
    pub fn with_state<S: Clone + Send + Sync + 'static>(&mut self, state: S) -> &mut Server {
        self.state = Some(Arc::new(state));
        self.state_type = Some((TypeId::of::<S>(), std::any::type_name::<S>()));
        self.state_factory = None;
        self
    }

    /// Makes the handlers' state at start-up, before the setup hooks and
    /// before any connection is accepted (a pool opened with the server): as
    /// [`Server::with_state`], with the state `f` returns. An error stops
    /// the start ([`ServerError::Setup`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use asyncapy::extract::State;
    /// use asyncapy::{Client, Packet, Server};
    ///
    /// #[derive(Clone)]
    /// struct Db { name: Arc<str> }
    ///
    /// let mut server = Server::builder().port(0).build()?;
    /// server.with_state_from(|| async {
    ///     // e.g. Pool::connect(url).await?
    ///     Ok::<_, std::io::Error>(Db { name: "users".into() })
    /// });
    /// server.add_handler(|State(db): State<Db>, client: Client, _p: Packet| async move {
    ///     client.send(asyncapy::asyncaproto::Map::from_iter([("db", &*db.name)])).await
    /// });
    /// # Ok::<(), asyncapy::ServerError>(())
    /// ```
    pub fn with_state_from<S, F, Fut, E>(&mut self, f: F) -> &mut Server
    where
        S: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        E: Into<HandlerError>,
    {
        self.state = None;
        self.state_type = Some((TypeId::of::<S>(), std::any::type_name::<S>()));
        self.state_factory = Some(Box::new(move || {
            let fut = f();
            Box::pin(async move {
                let state = fut.await.map_err(Into::into)?;
                Ok(Arc::new(state) as Arc<dyn Any + Send + Sync>)
            })
        }));
        self
    }

    /// Runs `hook` before the server binds (the original's overridable
    /// `setup()`): open databases, warm caches, fill the state. A hook is
    /// `|| async { ... }` or takes the server's state, `|state: State<S>|
    /// async move { ... }`. An error stops the start ([`ServerError::Setup`]).
    /// Hooks run in the order they were added.
    ///
    /// ```
    /// # use asyncapy::{Config, Server};
    /// let mut server = Server::new(Config::default());
    /// server.on_setup(|| async { println!("starting"); });
    /// server.on_shutdown(|| async { println!("stopped"); Ok::<(), std::io::Error>(()) });
    /// ```
    pub fn on_setup<Args, H: Hook<Args>>(&mut self, hook: H) -> &mut Server {
        let (hook, state) = hook.boxed();
        self.hook_states
            .extend(state.map(|(id, name)| ("a setup hook", id, name)));
        self.setup.push(hook);
        self
    }

    /// Runs `hook` once the server has stopped and every session has ended
    /// (the original's overridable `shutdown()`); it may take the state, as
    /// for [`Server::on_setup`]. Errors are logged.
    pub fn on_shutdown<Args, H: Hook<Args>>(&mut self, hook: H) -> &mut Server {
        let (hook, state) = hook.boxed();
        self.hook_states
            .extend(state.map(|(id, name)| ("a shutdown hook", id, name)));
        self.shutdown.push(hook);
        self
    }

    /// Runs `hook` with the addresses the server listens on ([`Ready`]: its
    /// own, and the metrics endpoint's), once it is bound and before it
    /// accepts its first connection: the "ready" notification (with port 0,
    /// the only way to learn the port). Under
    /// [`Server::start`] and [`Server::run_until_signal`], the SIGINT and
    /// SIGTERM handlers are in place by then, so a supervisor told "ready"
    /// may signal at once. The hook returns `()` or a `Result<(), E>`; an
    /// error stops the start ([`ServerError::Setup`]). Hooks run in the
    /// order they were added.
    ///
    /// ```
    /// # use asyncapy::{Client, Config, Packet, Server};
    /// # async fn echo(c: Client, p: Packet) { let _ = c.send(&p).await; }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::ServerError> {
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let mut server = Server::new(Config { port: 0, ..Config::default() });
    /// server.register_handler(echo);
    /// server.on_ready(move |ready| tx.send(ready.addr));
    /// let running = server.bind().await?;
    /// assert_eq!(rx.try_recv().ok(), Some(running.local_addr()));
    /// # running.handle().shutdown();
    /// # running.wait().await
    /// # }
    /// ```
    pub fn on_ready<F, R>(&mut self, hook: F) -> &mut Server
    where
        F: FnOnce(Ready) -> R + Send + 'static,
        R: IntoHookResult,
    {
        self.ready
            .push(Box::new(move |ready| hook(ready).into_hook_result()));
        self
    }

    /// Fails unless every handler and hook that takes a state takes the
    /// server's.
    fn check_states(&self) -> Result<(), ServerError> {
        let wanted = self.dispatcher.required_states().chain(
            self.hook_states
                .iter()
                .map(|(who, id, name)| (*who, *id, *name)),
        );
        for (who, id, name) in wanted {
            match self.state_type {
                Some((have, _)) if have == id => {}
                Some((_, have)) => {
                    return Err(ServerError::State {
                        who: who.to_owned(),
                        wanted: name,
                        have,
                    })
                }
                None => {
                    return Err(ServerError::State {
                        who: who.to_owned(),
                        wanted: name,
                        have: "none (see Server::with_state)",
                    })
                }
            }
        }
        Ok(())
    }

    /// A [`ServerBuilder`] over the default configuration.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers `handler` in group 0 with no filters (the original's
    /// `register_handler(handler)`); chain [`Route::filter`] and [`Route::group`]
    /// to change that. The same as [`Server::add_handler`].
    pub fn register_handler<Args: 'static, H: Handler<Args>>(&mut self, handler: H) -> &mut Route {
        self.add_handler(handler)
    }

    /// Registers `handler`; the returned [`Route`] takes its filters and group.
    ///
    /// ```
    /// use asyncapy::{Client, Config, Packet, Server};
    /// # async fn echo_server(client: Client, packet: Packet) { let _ = client.send(&packet).await; }
    /// # async fn echo_server_2(client: Client, packet: Packet) { let _ = client.send(&packet).await; }
    /// let mut server = Server::new(Config::default());
    /// server.add_handler(echo_server);
    /// server.add_handler(echo_server_2).group(-1); // runs first
    /// ```
    pub fn add_handler<Args: 'static, H: Handler<Args>>(&mut self, handler: H) -> &mut Route {
        let name = short_type_name::<H>();
        self.dispatcher.add(name, erase(handler))
    }

    /// Runs `packet` through the routes exactly as a session does: the seam
    /// of [`TestSession::dispatch`](crate::testing::TestSession::dispatch).
    pub(crate) async fn dispatch_packet(&mut self, client: &Client, packet: Packet) -> Outcome {
        self.dispatcher.freeze();
        self.dispatcher.run(client, packet, &self.state).await
    }

    /// Validates the configuration and binds the listener; the server then
    /// accepts connections on a task of the current runtime.
    ///
    /// Like the original, the server logs (to standard error, in
    /// `console_format` at `logging_level`) unless the application installed
    /// a `tracing` subscriber of its own first: then every line goes to
    /// that one, and the server's log options do not apply. The first server
    /// of a process sets the log up; later ones use it as it is.
    pub async fn bind(mut self) -> Result<RunningServer, ServerError> {
        self.config.validate()?;
        self.config.init_logging()?;
        self.load_tls()?;
        crate::panic_report::install_hook();
        if self.dispatcher.is_empty() {
            return Err(ServerError::NoHandlers);
        }
        self.check_states()?;
        let mut state = self.state;
        if let Some(factory) = self.state_factory {
            state = Some(factory().await.map_err(ServerError::Setup)?);
        }
        for setup in self.setup {
            let running = setup(&state).map_err(|e| ServerError::Setup(e.into()))?;
            running.await.map_err(ServerError::Setup)?;
        }
        let mut dispatcher = self.dispatcher;
        dispatcher.freeze();
        let codec = FrameCodec::new(self.config.frame_config()?);
        #[cfg(feature = "tls")]
        let tls = self.tls;
        let target = format!("{}:{}", self.config.addr, self.config.port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target.as_str())
            .await
            .map_err(|source| ServerError::Resolve {
                addr: target.clone(),
                source,
            })?
            .collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut bound = None;
        for addr in addrs {
            match listen(addr, self.config.reuse_port) {
                Ok(listener) => {
                    bound = Some(listener);
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let listener = bound.ok_or(ServerError::Bind {
            addr: target.clone(),
            source: last_error,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: target,
            source,
        })?;
        let endpoint = crate::metrics::start(self.config.metrics_addr, dispatcher.route_names())
            .await
            .map_err(|source| ServerError::Bind {
                addr: self
                    .config
                    .metrics_addr
                    .map(|addr| addr.to_string())
                    .unwrap_or_default(),
                source,
            })?;
        let shared = match &self.config.limits_store {
            Some(url) => Some(
                crate::limits::SharedLimits::connect(url, self.config.limits_fail)
                    .map_err(|e| ServerError::Setup(format!("limits_store: {e}").into()))?,
            ),
            None => None,
        };
        let shared_sessions = shared.clone().filter(|_| self.config.session_limit > 0);
        let local_limit = match shared_sessions {
            Some(_) => 0,
            None => self.config.session_limit,
        };
        let registry = Arc::new(
            Registry::new(local_limit)
                .with_outbox(self.config.max_outbox, self.config.timeout)
                .with_metrics(endpoint.metrics.clone())
                .with_shared(shared_sessions.clone()),
        );
        let heartbeat = shared_sessions.map(|shared| {
            let (registry, metrics) = (registry.clone(), endpoint.metrics.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::limits::HEARTBEAT);
                every.tick().await;
                loop {
                    every.tick().await;
                    let registry = registry.clone();
                    shared.heartbeat(Box::new(move || registry.live()), metrics.clone());
                }
            })
        });
        let shutdown = Arc::new(Shutdown::new(registry));
        let permits = Arc::new(Semaphore::new(self.config.max_connections));
        #[cfg(feature = "tls")]
        let security = match &tls {
            Some(tls) if tls.requires_client_certificates() => {
                " with TLS, client certificates required"
            }
            Some(_) => " with TLS",
            None => "",
        };
        #[cfg(not(feature = "tls"))]
        let security = "";
        let ctx = Arc::new(ServerContext {
            codec,
            dispatcher,
            state: state.clone(),
            shutdown: shutdown.clone(),
            permits: permits.clone(),
            #[cfg(feature = "tls")]
            tls: tls.map(|tls| tls.acceptor()),
            metrics: endpoint.metrics,
            rate: match shared {
                Some(_) => None,
                None => self.config.rate_limit.map(crate::limits::LocalRate::new),
            },
            shared,
            config: self.config,
        });
        let handle = ServerHandle {
            shutdown,
            permits,
            max_connections: ctx.config.max_connections,
        };
        let tracker = TaskTracker::new();
        tracing::info!("Serving on {local_addr}{security}");
        let told = Ready {
            addr: local_addr,
            metrics_addr: endpoint.addr,
        };
        for ready in self.ready {
            ready(told).map_err(ServerError::Setup)?;
        }
        let run = listener::run(listener, ctx, tracker, self.shutdown);
        let metrics_task = endpoint.task;
        let task = tokio::spawn(async move {
            run.await;
            if let Some(heartbeat) = heartbeat {
                heartbeat.abort();
            }
            if let Some(metrics) = metrics_task {
                metrics.abort();
                // Its listener is closed once the aborted task is.
                let _ = metrics.await;
            }
        });
        Ok(RunningServer {
            local_addr,
            metrics_addr: endpoint.addr,
            handle,
            task,
        })
    }

    /// Runs the server until SIGINT or SIGTERM (the original's `start()`): builds
    /// a runtime with `workers` threads, binds, serves, and shuts down gracefully.
    /// The signal handlers are in place before the `Serving on ADDR` line is
    /// logged (at INFO), so a supervisor may signal from that line on.
    ///
    /// [`Server::on_ready`] tells the address the server listens on.
    pub fn start(self) -> Result<(), ServerError> {
        // The log is set up by bind(); a bad format is refused before a
        // runtime is built.
        self.config.init_logging()?;
        let runtime = runtime(self.config.workers).map_err(ServerError::Runtime)?;
        runtime.block_on(self.run_until_signal())
    }

    /// What [`Server::start`] runs, on the caller's runtime (one it needs
    /// before the server starts: to open a database the handlers use, say):
    /// binds, serves until SIGINT or SIGTERM, and shuts down gracefully. The
    /// signal handlers are in place before the server binds, so from the
    /// `Serving on ADDR` line and the [`Server::on_ready`] hooks on, a signal
    /// is a graceful shutdown, not the default action.
    pub async fn run_until_signal(self) -> Result<(), ServerError> {
        let signalled = shutdown_signal().map_err(ServerError::Signal)?;
        let running = self.bind().await?;
        running.shutdown_when(signalled);
        running.wait().await
    }
}

/// A tokio runtime with `workers` worker threads: one per core when 0, a
/// single-threaded runtime when 1.
pub fn runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if workers > 1 {
        builder.worker_threads(workers);
    }
    builder.enable_all().build()
}

/// A bound, serving server.
pub struct RunningServer {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address the listener is bound to (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `GET /metrics` is served on (`metrics_addr`, with the
    /// real port when 0 was asked); `None` without metrics.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A handle to stop the server or inspect it from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Waits until the server has shut down (after [`ServerHandle::shutdown`]).
    pub async fn wait(self) -> Result<(), ServerError> {
        self.task.await.map_err(ServerError::Task)
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully. The
    /// handlers are installed before the first await: see
    /// [`RunningServer::shutdown_on_signal`] to install them earlier still.
    pub async fn run_until_signal(self) -> Result<(), ServerError> {
        self.shutdown_on_signal()?;
        self.wait().await
    }

    /// Starts a graceful shutdown on SIGINT or SIGTERM (Ctrl-C elsewhere).
    /// The handlers are in place when this returns, so a program can say it
    /// is ready only then: a signal sent before would end the process with
    /// the default action instead of a graceful shutdown. Call it on the
    /// runtime the server runs on.
    ///
    /// ```
    /// # use asyncapy::{Client, Config, Packet, Server};
    /// # async fn echo(c: Client, p: Packet) { let _ = c.send(&p).await; }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::ServerError> {
    /// let mut server = Server::new(Config { port: 0, ..Config::default() });
    /// server.register_handler(echo);
    /// let running = server.bind().await?;
    /// running.shutdown_on_signal()?;
    /// println!("listening on {}", running.local_addr()); // safe to signal from here
    /// # running.handle().shutdown();
    /// running.wait().await
    /// # }
    /// ```
    pub fn shutdown_on_signal(&self) -> Result<(), ServerError> {
        let signalled = shutdown_signal().map_err(ServerError::Signal)?;
        self.shutdown_when(signalled);
        Ok(())
    }

    /// Starts a graceful shutdown when `signalled` (from [`shutdown_signal`]) completes.
    fn shutdown_when(&self, signalled: impl Future<Output = ()> + Send + 'static) {
        let handle = self.handle();
        tokio::spawn(async move {
            signalled.await;
            tracing::info!("Signal received, shutting down");
            handle.shutdown();
        });
    }
}

/// Stops a running server, from any task or thread.
#[derive(Clone)]
pub struct ServerHandle {
    shutdown: Arc<Shutdown>,
    permits: Arc<Semaphore>,
    max_connections: usize,
}

impl ServerHandle {
    /// Starts a graceful shutdown: stop accepting, let in-flight packets finish
    /// within the grace period, close every session.
    pub fn shutdown(&self) {
        self.shutdown.drain();
    }

    /// Whether a shutdown was started.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_draining()
    }

    /// How many sessions are live right now.
    pub fn session_count(&self) -> usize {
        self.shutdown.registry().len()
    }

    /// How many connections the server holds right now: its sessions, the
    /// connections still in their TLS handshake, and those closing (at most
    /// `max_connections`; refused connections are not counted).
    ///
    /// ```
    /// # use asyncapy::{Client, Config, Packet, Server};
    /// # async fn echo(c: Client, p: Packet) { let _ = c.send(&p).await; }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::ServerError> {
    /// let mut server = Server::new(Config { port: 0, ..Config::default() });
    /// server.register_handler(echo);
    /// let running = server.bind().await?;
    /// let handle = running.handle();
    /// assert_eq!((handle.connection_count(), handle.session_count()), (0, 0));
    /// # handle.shutdown();
    /// # running.wait().await
    /// # }
    /// ```
    pub fn connection_count(&self) -> usize {
        self.max_connections
            .saturating_sub(self.permits.available_permits())
    }
}

/// Installs the SIGINT and SIGTERM handlers now (Ctrl-C elsewhere), and
/// returns a future that completes at the first of them.
fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Binds `addr`; with `reuse_port`, SO_REUSEPORT (and SO_REUSEADDR) first,
/// so that a new instance can bind while an old one drains.
/// (SO_REUSEADDR and a backlog of 1024 either way, as `TcpListener::bind`.)
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "reuse_port needs SO_REUSEPORT (Unix)",
        ));
    }
    // Linux gives an accepted socket the listener's TCP_NODELAY: set once
    // here, it costs no system call per connection (elsewhere the accept
    // loop, `listener::run`, sets it on each connection).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    // "crate::module::echo" -> "echo"; closures keep their readable tail.
    let trimmed = full.split('<').next().unwrap_or(full);
    trimmed
        .rsplit("::")
        .find(|part| !part.starts_with('{'))
        .unwrap_or(trimmed)
        .to_owned()
}
