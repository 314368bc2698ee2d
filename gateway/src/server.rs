//! The accept loop (after mini-redis's `server::run`): every TCP connection the gateway serves,
//! HTTP and WebSocket alike, holds one permit of a bounded pool for as long as it is open, and
//! a request's headers must arrive within `gateway.header_timeout`.
//!
//! Connections that have not sent a request yet are *pending*. At most a quarter of the cap
//! (1 to 4,096) may be pending; when another arrives, the oldest pending one is closed. A flood
//! of idle sockets therefore only pushes out its own sockets: a health probe or a dashboard that
//! connects and sends its request at once is served throughout, and the staff already connected
//! are never touched.
//!
//! Why not `axum::serve`: it neither caps open connections nor times out a connection that never
//! sends a request, so 20,000 idle sockets took every file descriptor of the process: `/healthz`
//! hung, WebSockets stopped, and the engine lost its NATS connection. Here a connection beyond the
//! cap is closed as soon as it is accepted, and the default cap leaves a reserve of descriptors
//! below the process's limit for NATS, files and the staff already connected.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tower::ServiceExt;

use crate::Hub;

/// The most a request's line and headers may take (hyper answers 431 beyond it).
const MAX_HEAD: usize = 64 * 1024;

/// How long open connections get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// The kernel send buffer of each connection. Linux grows it to 4 MiB by default: 10,000
/// dashboards could pin 40 GiB of kernel memory, and a client that stopped reading would take
/// megabytes of alerts before its writes block and it is closed with 1013. 256 KiB holds about
/// a hundred alert frames.
const SEND_BUFFER: usize = 256 * 1024;

/// The longest the accept loop waits, at the cap, for the permits of connections it evicted.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// How many connections may wait for their first request under a cap of `max_open`.
pub fn max_pending(max_open: usize) -> usize {
    (max_open / 4).clamp(1, 4096)
}

/// Connections that have not sent a request yet, oldest first, each with the switch that
/// closes it.
#[derive(Default)]
struct Pending {
    next_id: u64,
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
    /// Connections told to close to make room whose permits are not back yet.
    evicting: usize,
}

/// The pending connections, shared by the accept loop and the connections' services.
#[derive(Clone)]
struct Door {
    pending: Arc<Mutex<Pending>>,
    max_pending: usize,
}

impl Door {
    /// Registers a new connection; returns its id, the receiver that closes it, and the switch
    /// of the oldest pending connection when there are too many.
    fn admit(&self) -> (u64, oneshot::Receiver<()>, Option<oneshot::Sender<()>>) {
        let (tx, rx) = oneshot::channel();
        let mut p = self.lock();
        let id = p.next_id;
        p.next_id += 1;
        p.waiting.insert(id, tx);
        let evict = if p.waiting.len() > self.max_pending {
            p.waiting.pop_first().map(|(_, tx)| tx)
        } else {
            None
        };
        p.evicting += usize::from(evict.is_some());
        (id, rx, evict)
    }

    /// A connection told to close (by [`Door::admit`]) has given its permit back, or will never
    /// hold one for long: it had ended before the word reached it.
    fn evicted(&self) {
        let mut p = self.lock();
        p.evicting = p.evicting.saturating_sub(1);
    }

    /// Whether permits of evicted connections are on their way back.
    fn evicting(&self) -> bool {
        self.lock().evicting > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connection `id` sent a request (or ended): it is no longer pending.
    fn settle(&self, id: u64) {
        self.lock().waiting.remove(&id);
    }
}

/// The default cap on open connections for an open-file limit of `limit`: the limit less an
/// eighth of it (at least 64 descriptors) for NATS, the store, logs and the process itself.
pub fn default_max_open(limit: u64) -> usize {
    let reserve = (limit / 8).max(64);
    usize::try_from(limit.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
}

/// The process's soft open-file limit (`ulimit -n`); 1024 when it cannot be read or is
/// unlimited beyond reason.
fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(1 << 20)
}

/// A connection and its permit: the permit returns when the socket closes, which is after the
/// WebSocket ends for an upgraded connection (the upgrade keeps this IO).
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    hub: Arc<Hub>,
}

impl Drop for Permitted {
    fn drop(&mut self) {
        self.hub.metrics.open_connections.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves the gateway's routes on `listener` until `shutdown` resolves; then closes every
/// WebSocket session with 1001 and gives open connections [`DRAIN`] to finish.
///
/// # Errors
/// None today: accept errors (such as running out of file descriptors) are counted, logged and
/// retried after a pause, never fatal.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limit = open_file_limit();
    let max_open = hub
        .config
        .max_open_connections
        .unwrap_or_else(|| default_max_open(limit));
    hub.metrics
        .open_connections_limit
        .store(max_open as u64, Relaxed);
    tracing::info!(
        max_open,
        open_file_limit = limit,
        "gateway accepts at most this many open connections"
    );
    let permits = Arc::new(Semaphore::new(max_open));
    let door = Door {
        pending: Arc::default(),
        max_pending: max_pending(max_open),
    };
    let app = crate::router(hub.clone());
    // HTTP/1.1 (what browsers speak to a plain-TCP gateway), with hyper's own connection
    // builder: hyper-util's auto builder first waits for bytes to pick a version, with no
    // timeout, before hyper's header timer even starts, so a socket that never sends anything
    // would be held forever.
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(hub.config.header_timeout.as_std())
        // Request line and headers beyond 64 KiB are refused (431) instead of buffered.
        .max_header_size(MAX_HEAD);
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    // Patient updates reach the connections in one coalesced batch per flush.
    let flusher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(hub.config.patient_flush.as_std());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                hub.flush_patients();
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: the descriptors come back as connections close.
                    hub.metrics.accept_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            // Idle connections told to make room (below) hold their permits until their tasks
            // run, which under load can be after the accept loop took in a hundred more: wait
            // for those permits rather than refuse a probe or a dashboard while they come back.
            Err(_) if door.evicting() => tokio::select! {
                waited = tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned()) => {
                    waited.ok().and_then(Result::ok)
                }
                () = &mut shutdown => break,
            },
            Err(_) => None,
        };
        let Some(permit) = permit else {
            // Refused at the door: closing at once gives the descriptor back.
            hub.metrics.refused_connections.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, SEND_BUFFER);
        hub.metrics.open_connections.fetch_add(1, Relaxed);
        let io = TokioIo::new(Permitted {
            stream,
            _permit: permit,
            hub: hub.clone(),
        });
        let (id, mut evicted, evict) = door.admit();
        if let Some(oldest) = evict
            && oldest.send(()).is_err()
        {
            // It ended on its own meanwhile; its permit is back or about to be.
            door.evicted();
        }
        let settle = door.clone();
        let service = app
            .clone()
            .map_request(move |req: axum::extract::Request<_>| {
                settle.settle(id);
                req
            });
        let service = TowerToHyperService::new(service);
        let conn = http.serve_connection(io, service).with_upgrades();
        let (hub, door, mut closing) = (hub.clone(), door.clone(), closing.clone());
        tokio::spawn(async move {
            let told = {
                tokio::pin!(conn);
                let mut told = false;
                loop {
                    tokio::select! {
                        r = conn.as_mut() => {
                            if let Err(e) = r {
                                let timed_out = e.is_timeout();
                                if timed_out {
                                    hub.metrics.header_timeouts.fetch_add(1, Relaxed);
                                }
                                if e.is_parse_too_large() {
                                    hub.metrics.oversize_heads.fetch_add(1, Relaxed);
                                }
                                tracing::debug!(error = %e, timed_out, "connection ended with an error");
                            }
                            break;
                        }
                        Ok(()) = &mut evicted => {
                            // Dropping the connection closes the socket and returns its permit.
                            hub.metrics.evicted_pending.fetch_add(1, Relaxed);
                            told = true;
                            break;
                        }
                        Ok(()) = closing.changed() => conn.as_mut().graceful_shutdown(),
                    }
                }
                told
            };
            // The connection and its permit are gone here.
            door.settle(id);
            // Told to close while it was ending by itself: the word still counts as delivered
            // (after `close`, a later send fails and the accept loop counts it instead).
            evicted.close();
            if told || evicted.try_recv().is_ok() {
                door.evicted();
            }
        });
    }
    // Sessions close with 1001, keep-alive connections after their current request; every
    // permit back means every connection is gone.
    hub.close_all();
    flusher.abort();
    let _ = closing_tx.send(true);
    let all = u32::try_from(max_open).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown drain; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_door_counts_evictions_until_their_permits_are_back() {
        let door = Door {
            pending: Arc::default(),
            max_pending: 1,
        };
        let (first, _rx1, none) = door.admit();
        assert!(none.is_none() && !door.evicting());
        // A second pending connection pushes the first out; a third, the second.
        let (_, _rx2, oldest) = door.admit();
        assert!(oldest.is_some() && door.evicting());
        let (_, _rx3, _) = door.admit();
        door.settle(first);
        door.evicted();
        assert!(door.evicting(), "one eviction still on its way");
        door.evicted();
        assert!(!door.evicting());
        door.evicted();
        assert!(!door.evicting(), "never below zero");
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_under_any_limit() {
        assert_eq!(default_max_open(1024), 896);
        assert_eq!(default_max_open(256), 192);
        assert_eq!(default_max_open(64), 1);
        assert_eq!(default_max_open(1_048_576), 917_504);
        for limit in [1, 2, 65, 100, 512, 4096, 65_536] {
            let cap = default_max_open(limit) as u64;
            assert!(cap >= 1 && (cap < limit || limit <= 64), "{limit} -> {cap}");
            assert!(
                limit.saturating_sub(cap) >= 64.min(limit - 1),
                "{limit} -> {cap}"
            );
        }
    }
}
