//! A TCP link between a client and nats-server that a test can break the way a lost NATS node
//! or a broken connection does: what the server has already sent is lost on the way, and the
//! client reconnects.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

pub struct LossyLink {
    /// Where clients connect (`nats://127.0.0.1:PORT`).
    pub url: String,
    losing: Arc<AtomicBool>,
    /// While set, every connection is refused (closed as soon as it is accepted).
    down: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl LossyLink {
    /// A link to the server at `upstream` (`nats://HOST:PORT`) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("nats://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind link");
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let losing = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (losing, down, connections) = (losing.clone(), down.clone(), connections.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if down.load(Relaxed) {
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                    });
                    let losing = losing.clone();
                    let down = tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = server_rx.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if !losing.load(Relaxed)
                                && client_tx.write_all(&buf[..n]).await.is_err()
                            {
                                break;
                            }
                        }
                    });
                    let mut held = connections.lock().unwrap();
                    held.push(up.abort_handle());
                    held.push(down.abort_handle());
                }
            }
        });
        LossyLink {
            url,
            losing,
            down,
            connections,
            accept,
        }
    }

    /// From now on, everything the server sends is lost before it reaches the client.
    pub fn lose_from_server(&self) {
        self.losing.store(true, Relaxed);
    }

    /// Takes the link down: every connection breaks and new ones are refused until
    /// [`LossyLink::up`], as when the network between a client and NATS is lost.
    pub fn down(&self) {
        self.down.store(true, Relaxed);
        self.cut();
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.down.store(false, Relaxed);
    }

    /// Breaks every connection (the client notices and reconnects) and carries everything
    /// again from then on.
    pub fn cut(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
        self.losing.store(false, Relaxed);
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
