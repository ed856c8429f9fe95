//! [`Rejection`]: a request refused before (or by) its handler. Re-exported
//! as `asyncapy::extract::Rejection`.

use std::fmt;

/// A request refused before (or by) its handler.
///
/// [`Rejection::malformed`]: the client's fault (a payload that does not fit
/// the handler's type), answered `ERR_REQUEST_MALFORMED` and logged at WARNING.
/// [`Rejection::internal`]: the server's (a handler asking for what the
/// server does not have), answered `ERR_HANDLER_FAILED` and logged as an ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    malformed: bool,
    reason: String,
}

impl Rejection {
    /// The request does not fit: `reason` says why (it is logged, not sent).
    pub fn malformed(reason: impl Into<String>) -> Rejection {
        Rejection {
            malformed: true,
            reason: reason.into(),
        }
    }

    /// The server cannot serve the request: `reason` goes to the log only.
    pub fn internal(reason: impl Into<String>) -> Rejection {
        Rejection {
            malformed: false,
            reason: reason.into(),
        }
    }

    /// Whether the client is at fault.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.malformed {
            write!(f, "malformed request: {}", self.reason)
        } else {
            f.write_str(&self.reason)
        }
    }
}

impl std::error::Error for Rejection {}
