//! The accept loop: HTTP/1.1 with a header read timeout, a cap on
//! simultaneous connections, and graceful shutdown that lets in-flight
//! requests finish.
//!
//! Past the cap nothing waits: a connection is accepted at once and served
//! by the shedding router (`/v0/health` answers, everything else is a 503
//! with `Retry-After`, then the connection closes), up to [`SHED_CONNECTIONS`]
//! of those at a time; beyond that a new connection is closed unanswered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// Time in-flight requests get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections served by the shedding router at once, past `max_connections`.
pub const SHED_CONNECTIONS: usize = 64;

/// Longest time a shed connection has to send its request's headers.
const SHED_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<crate::tls::Tls>>,
    router: Router,
    shed_router: Router,
    max_connections: usize,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let shed_slots = Arc::new(Semaphore::new(SHED_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    let mut shed_builder = http1::Builder::new();
    shed_builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout.min(SHED_HEADER_TIMEOUT))
        .keep_alive(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (permit, builder, router) = match slots.clone().try_acquire_owned() {
            Ok(p) => (p, &builder, &router),
            Err(_) => match shed_slots.clone().try_acquire_owned() {
                Ok(p) => (p, &shed_builder, &shed_router),
                Err(_) => {
                    debug!("connection cap and shedding cap reached: closing a new connection");
                    continue;
                }
            },
        };
        let svc = TowerToHyperService::new(router.clone());
        let Some(tls) = &tls else {
            let io = TokioIo::new(JsonParseErrors::new(stream));
            let conn = graceful.watch(builder.serve_connection(io, svc));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            });
            continue;
        };
        // The handshake runs in the connection's task, bounded like a
        // request's headers, so a slow client cannot hold up the accept loop.
        let (acceptor, watcher, builder) = (tls.acceptor(), graceful.watcher(), builder.clone());
        tokio::spawn(async move {
            let hs = tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await;
            match hs {
                Ok(Ok(s)) => {
                    let io = TokioIo::new(JsonParseErrors::new(s));
                    if let Err(e) = watcher.watch(builder.serve_connection(io, svc)).await {
                        debug!(error = %e, "connection ended with an error");
                    }
                }
                Ok(Err(e)) => debug!(error = %e, "tls handshake failed"),
                Err(_) => debug!("tls handshake timed out"),
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => debug!("all connections drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => warn!("in-flight requests did not finish in time"),
    }
}

/// A connection that turns hyper's own answers to requests it cannot parse
/// (bad request line or URI, bad headers, URI or headers too long: a 4xx with
/// an empty body and no Content-Type, written before any handler runs) into
/// JSON errors, as the contract wants for every error. Other bytes pass
/// through untouched.
struct JsonParseErrors<T> {
    inner: T,
    /// A rewritten response not yet fully written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonParseErrors<T> {
    fn new(inner: T) -> Self {
        JsonParseErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> JsonParseErrors<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// The JSON version of a bodiless 4xx response head hyper made itself, if
/// `buf` is exactly that.
fn json_parse_error(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 4") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(&buf[..buf.len() - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let is = |h: &str, name: &str| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    let empty = headers.iter().any(|h| {
        is(h, "content-length") && h.split_once(':').is_some_and(|(_, v)| v.trim() == "0")
    });
    if !empty
        || headers
            .iter()
            .any(|h| is(h, "content-type") || is(h, "transfer-encoding"))
    {
        return None;
    }
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("error");
    let body = serde_json::json!({
        "error": format!("malformed request: {}", reason.to_lowercase())
    })
    .to_string();
    let mut out = format!("{status_line}\r\n");
    for h in headers.iter().filter(|h| !is(h, "content-length")) {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(out.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        if let Some(json) = json_parse_error(buf) {
            this.pending = json;
            // Whatever does not go out now goes out on flush or shutdown.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::json_parse_error;

    #[test]
    fn rewrites_only_bodiless_automatic_4xx() {
        let hyper400 =
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(json_parse_error(hyper400).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close") && head.contains("date: x"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("bad request"));
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(json_parse_error(other).is_none());
        }
    }
}
