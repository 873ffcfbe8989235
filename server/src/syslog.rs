//! The syslog listeners, off unless configured: TCP (octet counting or
//! newlines, detected per connection) and UDP (one message per datagram).
//! Each read's complete messages are parsed and appended on a blocking
//! thread, the next read's parsed while the last is appended, at most two
//! batches per connection: a slow writer slows the sender down (TCP
//! backpressure) instead of filling memory. Syslog carries no token: the
//! listeners take what reaches the address they are bound to.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BufMut;
use logpulse_model::ingest::{Import, Parsed};
use logpulse_model::{Durability, Error as EngineError};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, warn};

use crate::app::AppState;
use crate::ingest::syslog::{push, Frame, Framer, MESSAGE_BYTES_MAX};

/// Bytes read from a connection at a time: also the largest batch appended.
const READ_BYTES: usize = 256 << 10;
/// Datagrams taken from the UDP socket before they are appended.
const DATAGRAMS_MAX: usize = 1024;

/// Accepts TCP connections (TLS ones, RFC 5425, with `tls`) until the task
/// is aborted.
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<std::sync::Arc<crate::tls::Tls>>,
    app: AppState,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(app.config.max_connections));
    loop {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        match listener.accept().await {
            Ok((stream, peer)) => {
                let app = app.clone();
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                tokio::spawn(async move {
                    let res = match acceptor {
                        None => connection(stream, peer.ip(), app).await,
                        Some(a) => match a.accept(stream).await {
                            Ok(s) => connection(s, peer.ip(), app).await,
                            Err(e) => Err(e),
                        },
                    };
                    if let Err(e) = res {
                        debug!(error = %e, %peer, "syslog connection ended");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                warn!(error = %e, "syslog accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads one connection (plain or TLS) to its end. While one read's
/// messages are appended, the next read's are parsed: at most
/// [`IN_FLIGHT`] batches per connection, appended in the order read.
pub async fn connection(
    stream: impl AsyncRead + Unpin,
    peer: IpAddr,
    app: AppState,
) -> std::io::Result<()> {
    let mut batches = Batches::default();
    let res = read(stream, peer, &app, &mut batches).await;
    // Also after an error: the batches already read are stored.
    batches.finish().await;
    res
}

/// Reads, frames and hands each read's complete messages to `batches`.
async fn read(
    mut stream: impl AsyncRead + Unpin,
    peer: IpAddr,
    app: &AppState,
    batches: &mut Batches,
) -> std::io::Result<()> {
    let mut framer = Framer::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BYTES);
    loop {
        if buf.len() > MESSAGE_BYTES_MAX + READ_BYTES {
            return Err(std::io::Error::other("syslog frame too large"));
        }
        // Room for a whole read: a Vec grows by 64 bytes per read otherwise.
        buf.reserve(READ_BYTES);
        let n = stream.read_buf(&mut (&mut buf).limit(READ_BYTES)).await?;
        let mut at = 0;
        let mut frames = Vec::new();
        loop {
            match framer.next(&buf, at) {
                Frame::Message { start, end, next } => {
                    frames.push((start, end));
                    at = next;
                }
                Frame::Incomplete => break,
                Frame::Invalid(m) => return Err(std::io::Error::other(m)),
            }
        }
        if n == 0 && frames.is_empty() {
            // The last message of a newline-framed stream may lack its newline.
            if !buf.trim_ascii().is_empty() && framer_is_lines(&buf) {
                let end = buf.len();
                let last = std::mem::take(&mut buf);
                batches.store(app, last, vec![(0, end)], peer).await;
            }
            return Ok(());
        }
        if !frames.is_empty() {
            let rest = buf.split_off(at);
            let batch = std::mem::replace(&mut buf, rest);
            batches.store(app, batch, frames, peer).await;
        }
    }
}

/// Batches of one connection that are being parsed and appended.
#[derive(Default)]
struct Batches {
    running: std::collections::VecDeque<tokio::task::JoinHandle<()>>,
    /// Closed once the last batch started has been appended.
    last: Option<mpsc::Receiver<()>>,
}

/// Batches of one connection parsed or appended at once.
const IN_FLIGHT: usize = 2;

impl Batches {
    /// Starts storing a batch once fewer than [`IN_FLIGHT`] are running;
    /// it is appended after the one before it.
    async fn store(
        &mut self,
        app: &AppState,
        batch: Vec<u8>,
        frames: Vec<(usize, usize)>,
        peer: IpAddr,
    ) {
        while self.running.len() >= IN_FLIGHT {
            let _ = self.running.pop_front().expect("not empty").await;
        }
        let (done, next) = mpsc::channel();
        let after = self.last.replace(next);
        let app = app.clone();
        self.running.push_back(tokio::task::spawn_blocking(move || {
            if let Err(e) = append(&app, &batch, &frames, peer, after, done) {
                warn!(error = %e, "syslog messages were not stored");
            }
        }));
    }

    /// Waits until every batch started is stored.
    async fn finish(self) {
        for t in self.running {
            let _ = t.await;
        }
    }
}

fn framer_is_lines(buf: &[u8]) -> bool {
    !buf.trim_ascii_start()
        .first()
        .is_some_and(u8::is_ascii_digit)
}

/// Receives datagrams until the task is aborted.
pub async fn serve_udp(socket: UdpSocket, app: AppState) {
    let mut buf = vec![0u8; 65536];
    loop {
        let mut batch = Vec::new();
        let mut frames = Vec::new();
        let mut peer = None;
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                frames.push((0, n));
                batch.extend_from_slice(&buf[..n]);
                peer = Some(from);
            }
            Err(e) => warn!(error = %e, "syslog recv failed"),
        }
        // More datagrams already waiting, from the same peer, join the batch.
        while frames.len() < DATAGRAMS_MAX {
            match socket.try_recv_from(&mut buf) {
                Ok((n, from)) if Some(from) == peer => {
                    frames.push((batch.len(), batch.len() + n));
                    batch.extend_from_slice(&buf[..n]);
                }
                Ok((n, from)) => {
                    store_from(&app, &buf[..n], from).await;
                }
                Err(_) => break,
            }
        }
        if let Some(p) = peer {
            store(&app, batch, frames, p.ip()).await;
        }
    }
}

async fn store_from(app: &AppState, bytes: &[u8], from: SocketAddr) {
    store(app, bytes.to_vec(), vec![(0, bytes.len())], from.ip()).await;
}

/// Parses and appends a batch on a blocking thread.
async fn store(app: &AppState, batch: Vec<u8>, frames: Vec<(usize, usize)>, peer: IpAddr) {
    let mut one = Batches::default();
    one.store(app, batch, frames, peer).await;
    one.finish().await;
}

/// Parses a batch, waits for the batch before it (`after` closes once it
/// is appended), then appends; waits (and retries) while the writer is
/// behind, which is the backpressure on the sender. `done` closes when
/// this returns.
fn append(
    app: &AppState,
    batch: &[u8],
    frames: &[(usize, usize)],
    peer: IpAddr,
    after: Option<mpsc::Receiver<()>>,
    done: mpsc::Sender<()>,
) -> Result<(), EngineError> {
    let import_id = crate::auth::generate_token().split_off(3)[..16].to_string();
    let now = logpulse_model::time::now();
    let import = Import {
        id: &import_id,
        now,
    };
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let mut out = Parsed::default();
    out.rows.reserve(frames.len());
    for &(s, e) in frames {
        push(&batch[s..e], peer, now, year, &import, &mut out);
    }
    if let Some(before) = after {
        // Closed (an error, by design) once the batch before is appended.
        let _ = before.recv();
    }
    loop {
        match app.storage.append(&out.rows, Durability::Visible) {
            Err(EngineError::Busy(_)) if !app.is_shutting_down() => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    app.metrics
        .rows_ingested
        .fetch_add(out.successful, Ordering::Relaxed);
    app.metrics
        .rows_quarantined
        .fetch_add(out.quarantined, Ordering::Relaxed);
    drop(done);
    Ok(())
}
