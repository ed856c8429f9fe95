//! `Peer`: the Python side's view of a session (its client, address, id, date).

use super::*;

/// The engine's side of a session's client: what `asyncapy.core.Client` wraps.
#[pyclass(frozen, module = "asyncapy._engine")]
pub(crate) struct Peer {
    pub(crate) client: Client,
    pub(crate) runtime: tokio::runtime::Handle,
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
    fn encoding(&self) -> &'static str {
        encoding_name(self.client.encoding())
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

    /// Puts `payload` (a dict) in the session's outbox now; closes the
    /// session after it when `close`. False when the session is closed.
    #[pyo3(signature = (payload, close=false))]
    fn send(&self, payload: &Bound<'_, PyAny>, close: bool) -> PyResult<bool> {
        let map = to_map(payload)?;
        let sent = match self.client.try_send(&map) {
            Ok(()) => true,
            Err(asyncapy::SendError::Full) => {
                // The peer is not reading: wait for room on the engine's runtime.
                let client = self.client.clone();
                self.runtime.spawn(async move {
                    let _ = if close {
                        client.send_and_close(&map).await
                    } else {
                        client.send(&map).await
                    };
                });
                return Ok(true);
            }
            Err(asyncapy::SendError::Serialize(e)) => {
                return Err(PyValueError::new_err(e.to_string()));
            }
            Err(_) => false,
        };
        if close {
            self.client.session().close();
        }
        Ok(sent)
    }

    /// Closes the session once what was sent so far is written.
    fn close(&self) {
        self.client.session().close();
    }

    /// The live sessions of this client's IP address, this one included.
    fn sessions(&self) -> Vec<Peer> {
        self.client
            .get_sessions()
            .into_iter()
            .map(|session| Peer {
                client: session.client(),
                runtime: self.runtime.clone(),
            })
            .collect()
    }
}
