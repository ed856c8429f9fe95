//! What a session runs over: plain TCP, or TLS over TCP. The session loop only
//! needs a byte stream, plus a way to wait for the first byte without reading
//! it, so that an idle session holds no read buffer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's byte stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready once a byte can be read, without reading it: `Ok(true)` when data
    /// is waiting, `Ok(false)` at the end of the stream.
    fn poll_first_byte(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>>;
}

impl Transport for TcpStream {
    fn poll_first_byte(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        // Peek: tokio reports a fresh socket readable before any byte
        // arrives, and an idle session must not hold a buffer.
        let mut one = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut one);
        ready!(self.poll_peek(cx, &mut peeked))?;
        Poll::Ready(Ok(!peeked.filled().is_empty()))
    }
}

/// TLS over TCP: ready at once when rustls holds decrypted bytes (or the
/// peer's close_notify); otherwise, like plain TCP, when the socket has a byte
/// to read (a TLS record, perhaps only part of one: the read then waits for
/// the rest with the buffer allocated).
#[cfg(feature = "tls")]
impl Transport for TlsStream {
    fn poll_first_byte(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let (tcp, tls) = self.get_ref();
        if !tls.wants_read() {
            return Poll::Ready(Ok(true));
        }
        let mut one = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut one);
        ready!(tcp.poll_peek(cx, &mut peeked))?;
        Poll::Ready(Ok(!peeked.filled().is_empty()))
    }
}

/// A server-side TLS stream.
#[cfg(feature = "tls")]
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// Without the `tls` feature there is no TLS stream: a type with no values,
/// so that the code that handles one needs no `cfg` of its own (it cannot
/// run).
#[cfg(not(feature = "tls"))]
pub(crate) enum TlsStream {}

#[cfg(not(feature = "tls"))]
mod no_tls {
    use super::*;

    impl AsyncRead for TlsStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }
    }

    impl AsyncWrite for TlsStream {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match *self.get_mut() {}
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }
    }

    impl Transport for TlsStream {
        fn poll_first_byte(&mut self, _: &mut Context<'_>) -> Poll<io::Result<bool>> {
            match *self {}
        }
    }
}

/// Reads whatever is available into `buf`, allocating it only once a byte has
/// arrived (room for `read_size` bytes, reusing the allocation when the frames
/// that shared it are gone); `Ok(0)` is the end of the stream.
pub(crate) fn poll_read_more<T: Transport>(
    stream: &mut T,
    buf: &mut BytesMut,
    read_size: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() == 0 && !ready!(stream.poll_first_byte(cx))? {
        return Poll::Ready(Ok(0));
    }
    if buf.capacity() - buf.len() < read_size / 2 {
        buf.reserve(read_size);
    }
    tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
}
