//! Connections: accepting them, bounding how many are open, and closing the ones that stall.
//!
//! `axum::serve` keeps a socket open for as long as the client likes and accepts any number of
//! them, so a few hundred clients that connect and send nothing (or half a request) hold the
//! studio's sockets and file descriptors forever. This accept loop instead:
//! - takes at most [`Limits::max_connections`] connections at once; past that, new ones wait in
//!   the kernel's accept queue until a slot frees (they are not refused, so a browser just waits);
//! - closes a connection that has not sent a complete request head within
//!   [`Limits::header_timeout`] of opening or of its previous answer (hyper's header read timeout:
//!   it covers silent sockets, half-sent headers trickled byte by byte, and idle keep-alives);
//! - answers 408 when a request body stops arriving for [`Limits::idle_timeout`] ([`read_body`]),
//!   and closes a connection whose client stops taking its answer for as long ([`WriteDeadline`]).
//!
//! The time a model takes is not limited here: that is bounded by the worker queue (`pool`).
//! A failing connection only ends itself; the loop never stops on a client's error.

use crate::error::{rejected, ApiError};
use crate::MAX_UPLOAD_BYTES;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// How long the server waits on a client, and how many it serves at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection must send a whole request head within this long of opening or of its
    /// previous answer; else it is closed.
    pub header_timeout: Duration,
    /// The longest a client may leave a request body without its next part, or leave the answer
    /// untaken.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(30), max_connections: 128 }
    }
}

/// Serves `app` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    loop {
        // The slot is taken before accepting, so the connections past the cap stay in the kernel's
        // queue instead of being accepted and then dropped.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteDeadline::new(stream, limits.idle_timeout));
        let connection = http.serve_connection(io, TowerToHyperService::new(app.clone()));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("studio connection from {peer} closed: {e}");
            }
            drop(slot);
        });
    }
}

/// Out of file descriptors or a connection reset before it was accepted: the loop waits a little
/// (so it does not spin while descriptors are short) and goes on.
async fn accept_failed(e: io::Error) {
    tracing::warn!("studio: accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Axum middleware: reads the whole request body before the handler runs, refusing one over
/// [`MAX_UPLOAD_BYTES`] (413) and one whose next part does not come within the idle timeout
/// (408). Bodies are at most a few MiB, and every handler reads its whole body anyway.
pub async fn read_body(State(idle): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match collect(body, idle, MAX_UPLOAD_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => e.into_response(),
    }
}

async fn collect(mut body: Body, idle: Duration, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || rejected(StatusCode::PAYLOAD_TOO_LARGE, String::new());
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large()); // a Content-Length over the limit: refused before reading
    }
    let mut data = Vec::new();
    loop {
        let frame = tokio::time::timeout(idle, poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))).await.map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body stopped arriving: nothing came for {:.1} s; send the whole body at once", idle.as_secs_f64()),
            )
        })?;
        let Some(frame) = frame else { return Ok(Bytes::from(data)) };
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
    }
}

/// A socket whose writes fail once they have made no progress for `idle` (the client stopped
/// reading and its buffers filled). Only writes are timed: a pending read is normal while a
/// model works on the request.
pub struct WriteDeadline<T> {
    inner: T,
    idle: Duration,
    /// Started when a write first found the socket full; cleared when a write goes through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, idle: Duration) -> Self {
        Self { inner, idle, stalled: None }
    }

    /// Passes a write's result on, turning a wait longer than `idle` into an error.
    fn watch<R>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<R>>, progress: bool) -> Poll<io::Result<R>> {
        if let Poll::Ready(r) = result {
            if progress {
                self.stalled = None;
            }
            return Poll::Ready(r);
        }
        let idle = self.idle;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("the client took none of the answer for {idle:?}")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r, true)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r, true)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    // A finished flush is not progress: on a TCP socket it is a no-op that succeeds even while
    // the client reads nothing.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r, false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A runtime on a paused clock: timers fire in order, never late, however busy the machine.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
    }

    #[test]
    fn a_write_nobody_reads_fails_after_the_idle_time() {
        runtime().block_on(async {
            let (server, _client) = tokio::io::duplex(64); // the client never reads
            let mut s = WriteDeadline::new(server, Duration::from_millis(50));
            let t = tokio::time::Instant::now();
            let e = s.write_all(&[0u8; 1000]).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(50));
        });
    }

    #[test]
    fn a_slow_but_steady_reader_is_not_cut_off() {
        runtime().block_on(async {
            let (server, mut client) = tokio::io::duplex(64);
            let reader = tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let mut got = 0;
                while got < 1000 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    got += tokio::io::AsyncReadExt::read(&mut client, &mut buf).await.unwrap();
                }
            });
            // Each 64-byte write waits ~10 ms, 160 ms in all: far past the 50 ms idle time.
            let mut s = WriteDeadline::new(server, Duration::from_millis(50));
            s.write_all(&[0u8; 1000]).await.unwrap();
            reader.await.unwrap();
        });
    }

    #[test]
    fn bodies_are_collected_within_the_limit() {
        runtime().block_on(async {
            let idle = Duration::from_secs(1);
            assert_eq!(collect(Body::from("abc"), idle, 3).await.unwrap(), "abc");
            assert_eq!(collect(Body::from("abcd"), idle, 3).await.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(collect(Body::empty(), idle, 3).await.unwrap(), "");
        });
    }
}
