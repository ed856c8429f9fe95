//! What a session runs over: plain TCP, or TLS over TCP. The session loop only
//! needs a byte stream; [`poll_read_more`] makes the first read of an idle
//! session land on the stack, so that an idle session holds no read buffer.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's byte stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl Transport for TcpStream {}

#[cfg(feature = "tls")]
impl Transport for TlsStream {}

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

    impl Transport for TlsStream {}
}

/// The most the first read of an idle session takes (on the stack).
const FIRST_READ: usize = 8 * 1024;

/// Reads whatever is available into `buf`; `Ok(0)` is the end of the stream.
///
/// `buf` is allocated only once bytes have arrived: while it has no room at
/// all (a session that has not read yet), the read goes to the stack (at most
/// [`FIRST_READ`] bytes) and what it got is copied into a buffer with room for
/// `read_size`. This costs a copy of the first read, where waiting for the
/// first byte with a one-byte peek cost a system call per connection (tokio
/// takes a freshly accepted socket to be readable, so only a read can wait).
pub(crate) fn poll_read_more<T: Transport>(
    stream: &mut T,
    buf: &mut BytesMut,
    read_size: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() == 0 {
        let mut stack = [MaybeUninit::<u8>::uninit(); FIRST_READ];
        let room = read_size.clamp(1, FIRST_READ);
        let mut first = ReadBuf::uninit(&mut stack[..room]);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut first))?;
        let got = first.filled();
        if !got.is_empty() {
            buf.reserve(read_size.max(got.len()));
            buf.extend_from_slice(got);
        }
        return Poll::Ready(Ok(got.len()));
    }
    if buf.capacity() - buf.len() < read_size / 2 {
        buf.reserve(read_size);
    }
    tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn the_first_read_allocates_only_once_bytes_arrive_and_keeps_every_byte() {
        let (mut client, mut server) = pair().await;
        let mut buf = BytesMut::new();
        client.write_all(b"0123456789").await.expect("write");
        // Room for 4: the first read takes 4 (from the stack), the next the rest.
        let n = poll_fn(|cx| poll_read_more(&mut server, &mut buf, 4, cx))
            .await
            .expect("read");
        assert_eq!((n, &buf[..]), (4, &b"0123"[..]));
        assert!(buf.capacity() >= 4);
        let mut total = n;
        while total < 10 {
            total += poll_fn(|cx| poll_read_more(&mut server, &mut buf, 4, cx))
                .await
                .expect("read");
        }
        assert_eq!(&buf[..], b"0123456789");
        // A first read larger than the stack's room arrives whole, in parts.
        let big: Vec<u8> = (0..3 * FIRST_READ).map(|i| i as u8).collect();
        let mut big_buf = BytesMut::new();
        let (mut fresh_client, mut fresh) = pair().await;
        fresh_client.write_all(&big).await.expect("write");
        while big_buf.len() < big.len() {
            let n = poll_fn(|cx| poll_read_more(&mut fresh, &mut big_buf, 64 * 1024, cx))
                .await
                .expect("read");
            assert!(n > 0);
        }
        assert_eq!(&big_buf[..], &big[..]);
    }

    #[tokio::test]
    async fn a_session_closed_before_its_first_byte_allocates_nothing() {
        let (client, mut server) = pair().await;
        drop(client);
        let mut buf = BytesMut::new();
        let n = poll_fn(|cx| poll_read_more(&mut server, &mut buf, 1024, cx))
            .await
            .expect("read");
        assert_eq!((n, buf.capacity()), (0, 0));
    }
}
