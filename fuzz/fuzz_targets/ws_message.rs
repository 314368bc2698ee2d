//! Any bytes, as text frames a dashboard sends over `/ws`: the real session (subscribe,
//! commands, pings) over an in-memory socket answers each with a frame or closes, never panics.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
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

fuzz_target!(|data: &[u8]| {
    // Frames separated by NUL bytes; each as text (lossy: the socket carries UTF-8 only).
    let frames: Vec<String> = data
        .split(|b| *b == 0)
        .take(16)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    runtime().block_on(async {
        let hub = hub();
        let (server, client) = tokio::io::duplex(64 * 1024);
        let principal = hub.authenticate("nurse-token").expect("token").clone();
        let ws = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let session = tokio::spawn(vigil_gateway::session::run(ws, principal, hub));
        let mut c = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        for f in frames {
            if c.send(Message::text(f)).await.is_err() {
                break;
            }
        }
        let _ = c.close(None).await;
        while let Some(Ok(_)) = c.next().await {}
        let _ = session.await;
    });
});
