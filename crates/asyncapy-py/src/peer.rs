//! `Peer`: the Python side's view of a session (its client, address, id, date).

use super::*;

/// The engine's side of a session's client: what `asyncapy.core.Client` wraps.
#[pyclass(frozen, module = "asyncapy._engine")]
pub(crate) struct Peer {
    pub(crate) client: Client,
    pub(crate) shared: Arc<Shared>,
}

#[pymethods]
impl Peer {
    /// The client's IP address.
    #[getter]
    fn address(&self) -> String {
        self.client.ip().to_string()
    }

    /// The client's port.
    #[getter]
    fn port(&self) -> u16 {
        self.client.peer_addr().port()
    }

    /// The session id (a UUID, as text).
    #[getter]
    fn session_id(&self) -> String {
        self.client.session().id().to_string()
    }

    /// The session's encoding, `json` or `ziproto`.
    #[getter]
    fn encoding<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        encoding_py(py, self.client.encoding())
    }

    /// When the session started (seconds since the epoch).
    #[getter]
    fn started(&self) -> f64 {
        epoch_seconds(self.client.session().started())
    }

    /// Whether the session is closed or closing.
    #[getter]
    fn closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Hands `payload` (a dict) to the engine for the session's outbox (it is
    /// there after the trio thread's next `flush`, at the end of the current
    /// scheduling batch); closes the session after it when `close`. False when
    /// the session is closed.
    #[pyo3(signature = (payload, close=false))]
    fn send(&self, payload: &Bound<'_, PyAny>, close: bool) -> PyResult<bool> {
        let map = to_map(payload)?;
        if self.client.is_closed() {
            return Ok(false);
        }
        self.shared.hand_back(Out::Send {
            client: self.client.clone(),
            map,
            close,
        });
        Ok(true)
    }

    /// Tells the engine that this session's handler blocks: what the session
    /// holds back for its batch is written at once (after the sends handed
    /// over before), and so is what the handler sends later.
    fn uncork(&self) {
        self.shared.hand_back(Out::Uncork(self.client.clone()));
    }

    /// Closes the session once what was sent so far is written.
    fn close(&self) {
        self.shared.hand_back(Out::Close(self.client.clone()));
    }

    /// The live sessions of this client's IP address, this one included.
    fn sessions(&self) -> Vec<Peer> {
        self.client
            .get_sessions()
            .into_iter()
            .map(|session| Peer {
                client: session.client(),
                shared: self.shared.clone(),
            })
            .collect()
    }
}
