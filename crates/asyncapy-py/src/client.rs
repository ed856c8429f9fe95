//! `SyncClient`: the Rust [`BlockingClient`] under `asyncapy.client.Client`
//! (the original's synchronous connecting client). The GIL is released for
//! every network call.

use std::time::Duration;

use asyncapy::asyncaproto::ByteOrder;
use asyncapy::client::{BlockingClient, ClientConfig, ClientError, TlsOptions};
use pyo3::exceptions::{PyConnectionError, PyConnectionRefusedError, PyTimeoutError};

use super::*;

/// A connection to an AsyncAProto server, on the Rust blocking client.
#[pyclass(module = "asyncapy._engine")]
pub(crate) struct SyncClient {
    inner: BlockingClient,
    /// The Content-Length field's size, to find a raw frame's head.
    header_size: usize,
}

/// `encoding` by its name, `json` or `ziproto`.
fn encoding_named(name: &str) -> PyResult<Encoding> {
    match name {
        "json" => Ok(Encoding::Json),
        "ziproto" => Ok(Encoding::ZiProto),
        _ => Err(PyValueError::new_err(
            "The encoding must either be 'json' or 'ziproto'",
        )),
    }
}

/// The Python exception for a client error.
fn client_error(error: ClientError) -> PyErr {
    let text = error.to_string();
    match error {
        ClientError::Refused { .. } => PyConnectionRefusedError::new_err(text),
        ClientError::TimedOut(_) => PyTimeoutError::new_err(text),
        ClientError::Closed | ClientError::ClosedMidFrame { .. } | ClientError::NotConnected => {
            PyConnectionError::new_err(text)
        }
        ClientError::Frame(_)
        | ClientError::Payload(_)
        | ClientError::InvalidPayload(_)
        | ClientError::Value(_)
        | ClientError::Config(_) => PyValueError::new_err(text),
        _ => PyOSError::new_err(text),
    }
}

#[pymethods]
impl SyncClient {
    /// A client, not connected yet: a `header_size`-byte Content-Length
    /// (1 to 8) in `byteorder` (`big` or `little`), TLS when `tls` (without
    /// certificate checks, as the original), packets sent in `encoding`,
    /// every connect, read and write bounded by `timeout` seconds (`None`:
    /// no bound).
    #[new]
    #[pyo3(signature = (header_size, byteorder, tls, encoding, timeout=None))]
    fn new(
        header_size: u8,
        byteorder: &str,
        tls: bool,
        encoding: &str,
        timeout: Option<f64>,
    ) -> PyResult<SyncClient> {
        let byteorder = match byteorder {
            "big" => ByteOrder::Big,
            "little" => ByteOrder::Little,
            _ => {
                return Err(PyValueError::new_err(
                    "byteorder must either be 'big' or 'little'!",
                ))
            }
        };
        if !(1..=8).contains(&header_size) {
            return Err(PyValueError::new_err(
                "header_size must be between 1 and 8 bytes",
            ));
        }
        let timeout = match timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(_) => {
                return Err(PyValueError::new_err(
                    "timeout must be a positive number of seconds, or None",
                ))
            }
        };
        let mut config = ClientConfig::new()
            .header_size(header_size)
            .byteorder(byteorder)
            .encoding(encoding_named(encoding)?)
            .timeout(timeout);
        if tls {
            config = config.tls(TlsOptions::new().insecure(true));
        }
        Ok(SyncClient {
            inner: BlockingClient::new(config),
            header_size: usize::from(header_size),
        })
    }

    /// Connects to `host:port` (closing any previous connection).
    fn connect(&mut self, py: Python<'_>, host: &str, port: u16) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.connect(host, port))
            .map_err(client_error)
    }

    /// Whether the client holds a connection.
    #[getter]
    fn connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Sets the encoding of the packets sent from now on.
    fn set_encoding(&mut self, encoding: &str) -> PyResult<()> {
        self.inner.set_encoding(encoding_named(encoding)?);
        Ok(())
    }

    /// Sends `payload`: a dict, or a JSON object as `str` or `bytes`.
    fn send(&mut self, py: Python<'_>, payload: &Bound<'_, PyAny>) -> PyResult<()> {
        let map = if let Ok(text) = payload.cast::<PyString>() {
            Encoding::Json
                .decode(text.to_cow()?.as_bytes())
                .map_err(|e| PyValueError::new_err(e.to_string()))?
        } else if let Ok(bytes) = payload.cast::<PyBytes>() {
            Encoding::Json
                .decode(bytes.as_bytes())
                .map_err(|e| PyValueError::new_err(e.to_string()))?
        } else {
            to_map(payload)?
        };
        let inner = &mut self.inner;
        py.detach(|| inner.send(&map)).map_err(client_error)
    }

    /// Writes `data` as it is, unframed.
    fn send_bytes(&mut self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.send_bytes(&data)).map_err(client_error)
    }

    /// Reads at most `max` bytes as they come, unframed; empty when the
    /// server closed the connection.
    fn receive_bytes<'py>(&mut self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let bytes = py
            .detach(|| inner.receive_bytes(max))
            .map_err(client_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The next whole frame, head included; empty when the server closed the
    /// connection between frames (as the original).
    fn receive_raw<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        match py.detach(|| inner.receive_raw()) {
            Ok(raw) => Ok(PyBytes::new(py, &raw)),
            Err(ClientError::Closed) => Ok(PyBytes::new(py, b"")),
            Err(e) => Err(client_error(e)),
        }
    }

    /// The next packet: its raw bytes, and its payload as a dict, decoded in
    /// the encoding its head names (a failure reply is a dict too,
    /// `{"status": "failure", ...}`).
    fn receive<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyDict>)> {
        let inner = &mut self.inner;
        let raw = py.detach(|| inner.receive_raw()).map_err(client_error)?;
        let head = self.header_size + 2;
        let encoding = raw
            .get(head - 1)
            .copied()
            .and_then(Encoding::from_byte)
            .ok_or_else(|| PyValueError::new_err("unknown Content-Encoding"))?;
        let map = encoding
            .decode(&raw[head.min(raw.len())..])
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((PyBytes::new(py, &raw), map_to_py(py, &map)?))
    }

    /// Closes the connection (says so first with TLS).
    fn disconnect(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.disconnect()).map_err(client_error)
    }
}
