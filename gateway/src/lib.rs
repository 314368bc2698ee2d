//! vigil-gateway: the WebSocket and HTTP edge (contracts.md §5 and §6). Bearer-token auth,
//! subscriptions with tenant and unit isolation, snapshot then incremental alerts, coalesced
//! patient frames, commands, `/healthz`, `/readyz` and `/metrics`.
//!
//! Dependency chain: `config` -> `engine` -> **`gateway`** -> `vigil`. Commands leave through the
//! [`CommandPort`] the binary implements; alerts and patient states arrive through the [`Hub`].
//! HTTP routing is axum; WebSocket sessions run on tokio-tungstenite over the hyper upgrade.

mod hub;
pub mod session;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use vigil_engine::Timestamp;

pub use hub::{
    AlertEntry, CommandPort, CommandRequest, GatewayMetrics, Hub, MetricsSource, PatientView,
    Principal,
};

/// Wall-clock time for commands.
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// The HTTP routes.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/ws", get(ws_upgrade))
        .with_state(hub)
}

/// Serves until `shutdown` resolves; then closes every WebSocket session with 1001.
///
/// # Errors
/// The listener's IO error.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let h = hub.clone();
    axum::serve(listener, router(hub))
        .with_graceful_shutdown(async move {
            shutdown.await;
            h.close_all();
        })
        .await
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    if hub.ready.load(Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let mut r = hub.render_metrics().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The bearer token from `Authorization: Bearer` or `?token=`.
fn bearer(req: &Request) -> Option<String> {
    if let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(t.trim().to_string());
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
}

async fn ws_upgrade(State(hub): State<Arc<Hub>>, mut req: Request) -> Response {
    let Some(principal) = bearer(&req).and_then(|t| hub.authenticate(&t).cloned()) else {
        hub.metrics.rejected_unauthorized.fetch_add(1, Relaxed);
        return json_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "a valid bearer token is required",
        );
    };
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "missing Sec-WebSocket-Key",
        );
    };
    if !is_upgrade || !version_ok {
        return json_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "expected a WebSocket (version 13) upgrade",
        );
    }
    if hub.metrics.connected.load(Relaxed) >= hub.config.max_connections as u64 {
        hub.metrics.rejected_capacity.fetch_add(1, Relaxed);
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "too many connections",
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(64 * 1024))
                    .max_frame_size(Some(64 * 1024))
                    .read_buffer_size(4096);
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                session::run(ws, principal, hub).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
