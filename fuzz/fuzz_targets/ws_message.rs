//! Any bytes, as text frames a dashboard sends over `/ws`: the real gateway (its accept loop,
//! axum's upgrade, the session's reader and writer) on a loopback port answers each with a
//! frame or closes, never panics.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::Message;
use vigil_engine::{Alert, AlertCommand, CommandError};
use vigil_gateway::{CommandPort, Hub};

struct NoAlerts;

impl CommandPort for NoAlerts {
    fn execute(
        &self,
        req: AlertCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>> {
        Box::pin(async move { Err(CommandError::NotFound(req.alert_id)) })
    }

    fn patient(&self, _: String, _: String) -> vigil_gateway::ViewFuture {
        Box::pin(async { Ok(None) })
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn hub() -> Arc<Hub> {
    static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
    HUB.get_or_init(|| {
        let text = "[[auth.tokens]]\ntoken = \"nurse-token\"\ntenant = \"t1\"\nrole = \"nurse\"\n\
                    units = [\"icu-3\"]\n";
        let cfg = vigil_config::Config::from_toml(text, "fuzz").expect("config");
        let hub = Hub::new(&cfg, Vec::new());
        hub.set_commands(Arc::new(NoAlerts));
        hub.set_ready(true);
        hub
    })
    .clone()
}

/// The gateway, started once on the fuzzer's runtime (it runs while an input is being fed).
fn gateway() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(vigil_gateway::serve(listener, hub(), std::future::pending()));
            addr
        })
    })
}

fuzz_target!(|data: &[u8]| {
    // Frames separated by NUL bytes; each as text (lossy: the socket carries UTF-8 only).
    let frames: Vec<String> = data
        .split(|b| *b == 0)
        .take(16)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let url = format!("ws://{}/ws?token=nurse-token", gateway());
    runtime().block_on(async {
        let (mut c, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
        for f in frames {
            if c.send(Message::text(f)).await.is_err() {
                break;
            }
        }
        let _ = c.close(None).await;
        // Until the gateway closes its side: the session has ended.
        while let Some(Ok(_)) = c.next().await {}
    });
});
