//! vigil-gateway: the WebSocket and HTTP edge (contracts.md §5 and §6). Bearer-token auth,
//! subscriptions with tenant and unit isolation, snapshot then incremental alerts, coalesced
//! patient frames, commands, `/healthz`, `/readyz` and `/metrics`.
//!
//! Dependency chain: `config` -> `engine` -> **`gateway`** -> `vigil`. Commands leave through the
//! [`CommandPort`] the binary implements; alerts and patient states arrive through the [`Hub`].
//! HTTP routing, query strings, JSON bodies and the WebSocket upgrade are axum's; the accept
//! loop (`server.rs`) is ours, for its connection caps.

mod error;
mod hub;
pub mod protocol;
mod server;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::Path;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use vigil_engine::{AlertState, CommandKind, Timestamp};

pub use error::{ErrorCode, GatewayError};
pub use hub::{
    AlertEntry, ClusterSource, CommandPort, GatewayMetrics, HistorySource, Hub, MetricsSource,
    PageEntry, Principal, ReadinessCheck, RelayError, ViewFuture,
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
        .route("/", get(|| async { Html(INDEX) }))
        .route("/pager", get(|| async { Html(PAGER) }))
        .route("/assets/{name}", get(asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/ws", get(ws_upgrade))
        .route("/api/alerts", get(api_alerts))
        .route("/api/cluster", get(api_cluster))
        .route("/api/me", get(api_me))
        .route("/api/patients/{patient_id}", get(api_patient))
        .route("/api/alerts/{alert_id}/history", get(api_history))
        .route("/api/alerts/{alert_id}/{action}", post(api_command))
        .with_state(hub)
}

pub use server::serve;

/// The staff pages, served by the binary itself: no CDN, no external request, no build step.
/// `/` is the ward and practice views, `/pager` the pager view; both load `/assets/*`.
const INDEX: &str = include_str!("assets/index.html");
const PAGER: &str = include_str!("assets/pager.html");

/// `GET /assets/{name}`: the pages' script and style files (404 for any other name).
async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "vigil.css" => (include_str!("assets/vigil.css"), "text/css; charset=utf-8"),
        "common.js" => (
            include_str!("assets/common.js"),
            "text/javascript; charset=utf-8",
        ),
        "ward.js" => (
            include_str!("assets/ward.js"),
            "text/javascript; charset=utf-8",
        ),
        "pager.js" => (
            include_str!("assets/pager.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            // A restarted engine may serve a newer page: browsers revalidate each load.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    match hub.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// `/metrics`: OpenMetrics for a scraper that asks for it (Prometheus does), the classic text
/// format (0.0.4) for everything else (curl, promtool, older scrapers).
async fn metrics(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let text = hub.render_metrics();
    let (body, content_type) = if openmetrics {
        (
            text,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            classic_text(&text),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The classic text format from prometheus-client's OpenMetrics: a counter family's HELP and
/// TYPE lines name it with its `_total` suffix, as its samples do, and there is no `# EOF`.
/// Everything else is the same in both formats.
fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // Each family starts `# HELP name ...` then `# TYPE name kind`.
        if let (Some(help), Some(next)) = (line.strip_prefix("# HELP "), lines.get(i + 1))
            && let Some(name) = help.split(' ').next()
            && *next == format!("# TYPE {name} counter")
        {
            let text = &help[name.len()..];
            out.push_str(&format!(
                "# HELP {name}_total{text}\n# TYPE {name}_total counter\n"
            ));
            i += 2;
            continue;
        }
        if line != "# EOF" {
            out.push_str(line);
            out.push('\n');
        }
        i += 1;
    }
    out
}

/// A 200 with a JSON body.
fn json_ok(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// An HTTP error: `{"code", "message"}` with the code's status. Not counted (see
/// [`api_error`]).
fn json_error(code: ErrorCode, message: &str) -> Response {
    GatewayError::new(code, message).into_response()
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
    Query::<UrlQuery>::try_from_uri(req.uri()).ok()?.0.token
}

/// What the gateway reads from a URL's query string (percent-decoded; other keys ignored).
#[derive(Deserialize)]
struct UrlQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// An HTTP error, counted in `vigil_ws_errors_total`.
fn api_error(hub: &Hub, code: ErrorCode, message: &str) -> Response {
    hub.metrics.error(code);
    json_error(code, message)
}

fn authorize(hub: &Hub, req: &Request) -> Option<Principal> {
    bearer(req).and_then(|t| hub.authenticate(&t).cloned())
}

fn unauthorized(hub: &Hub) -> Response {
    hub.metrics.rejected_unauthorized.fetch_add(1, Relaxed);
    json_error(ErrorCode::Unauthorized, "a valid bearer token is required")
}

/// `GET /api/alerts[?state=open|acknowledged|snoozed|resolved]`: the alerts in the token's
/// scope (every non-resolved one without `state`), as `{"alerts": [...]}`.
async fn api_alerts(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    let state = match Query::<UrlQuery>::try_from_uri(req.uri()) {
        Ok(Query(q)) => q.state,
        Err(e) => return api_error(&hub, ErrorCode::BadRequest, &format!("bad query: {e}")),
    };
    let state = match state.as_deref() {
        None | Some("") => None,
        Some("open") => Some(AlertState::Open),
        Some("acknowledged") => Some(AlertState::Acknowledged),
        Some("snoozed") => Some(AlertState::Snoozed),
        Some("resolved") => Some(AlertState::Resolved),
        Some(other) => {
            let msg =
                format!("`state` must be open, acknowledged, snoozed or resolved, not `{other}`");
            return api_error(&hub, ErrorCode::BadRequest, &msg);
        }
    };
    let body = Hub::alerts_json("", &hub.alerts_in_scope(&principal, state));
    json_ok(body)
}

/// `GET /api/cluster` (role `admin`): the cluster's members, the partitions each owns and each
/// one's last heartbeat (docs/cluster.md). A process without `[cluster]` answers
/// `{"clustered": false, "members": []}`.
async fn api_cluster(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    if principal.role != vigil_config::Role::Admin {
        return api_error(
            &hub,
            ErrorCode::Forbidden,
            "GET /api/cluster needs an admin token",
        );
    }
    let body = match hub.cluster.get() {
        None => serde_json::json!({"clustered": false, "members": []}),
        Some(read) => match read().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading the cluster membership failed");
                return json_error(ErrorCode::Unavailable, &e);
            }
        },
    };
    json_ok(body.to_string())
}

/// `GET /api/me`: who the token is (tenant, role, units, name) and the alert categories it
/// may acknowledge, snooze and resolve, so that the staff page offers an action only where
/// the engine would accept it (the engine still checks every command).
async fn api_me(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    let acts: Vec<&str> = vigil_config::Category::ALL
        .into_iter()
        .filter(|&c| vigil_engine::alert::may_command(principal.role, CommandKind::Ack, c))
        .map(vigil_config::Category::as_str)
        .collect();
    let body = serde_json::json!({
        "tenant": principal.tenant,
        "role": principal.role.as_str(),
        "units": principal.units,
        "name": principal.name,
        "acts": acts,
    });
    json_ok(body.to_string())
}

/// `GET /api/patients/{patientId}`: the patient's current scores and the window's series,
/// each point with its time (`PatientView`, docs/dashboard.md), scoped like everything else:
/// 404 `PATIENT_NOT_FOUND` for a patient no engine keeps in the token's tenant and units.
async fn api_patient(
    State(hub): State<Arc<Hub>>,
    Path(patient_id): Path<String>,
    req: Request,
) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    if !vigil_config::is_token(&patient_id) {
        return api_error(
            &hub,
            ErrorCode::BadRequest,
            "`patientId` must match [A-Za-z0-9_-]{1,64}",
        );
    }
    match hub.patient_view(&principal, &patient_id).await {
        Ok(view) => {
            hub.metrics.patient_views.fetch_add(1, Relaxed);
            json_ok(view.to_string())
        }
        Err(e) => api_error(&hub, e.code, &e.message),
    }
}

/// `POST /api/alerts/{alertId}/ack|resolve|snooze`: the WebSocket commands for integrations
/// that cannot hold a socket. Same tokens, same codes: 401, 403 `FORBIDDEN`, 404
/// `ALERT_NOT_FOUND`, 409 `INVALID_TRANSITION`, 400 `BAD_REQUEST` naming the field.
async fn api_command(
    State(hub): State<Arc<Hub>>,
    Path((alert_id, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    // Refused before the body is read.
    let action = match protocol::Action::parse(&action) {
        Ok(a) => a,
        Err(msg) => return api_error(&hub, ErrorCode::BadRequest, &msg),
    };
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return api_error(
                &hub,
                ErrorCode::BadRequest,
                "body larger than 64 KiB or unreadable",
            );
        }
    };
    let c = match protocol::CommandBody::command(action, &alert_id, &body) {
        Ok(c) => c,
        Err(msg) => return api_error(&hub, ErrorCode::BadRequest, &msg),
    };
    match hub.command(&principal, c).await {
        Ok(alert) => json_ok(serde_json::json!({"ok": true, "alert": alert}).to_string()),
        Err(e) => GatewayError::from(&e).into_response(),
    }
}

/// `GET /api/alerts/{alertId}/history`: every transition of the alert from the `ALERTS`
/// stream (the audit trail), oldest first, as `{"alertId", "history": [alert, ...]}`. Only the
/// token's tenant is searched; an alert of a unit outside the token is not found.
async fn api_history(
    State(hub): State<Arc<Hub>>,
    Path(alert_id): Path<String>,
    req: Request,
) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    if !vigil_config::is_token(&alert_id) {
        return api_error(
            &hub,
            ErrorCode::BadRequest,
            "`alertId` must match [A-Za-z0-9_-]{1,64}",
        );
    }
    let Some(history) = hub.history.get() else {
        return api_error(
            &hub,
            ErrorCode::BadRequest,
            "this engine keeps no audit trail",
        );
    };
    let subject = format!("alerts.{}.{alert_id}", principal.tenant);
    let payloads = match history(subject).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "reading an alert's history failed");
            return json_error(ErrorCode::Unavailable, &e);
        }
    };
    let mut items = Vec::with_capacity(payloads.len());
    for p in &payloads {
        let Ok(mut envelope) = serde_json::from_slice::<serde_json::Value>(p) else {
            continue;
        };
        let data = envelope
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_default();
        let unit = data.get("unitId").and_then(|u| u.as_str());
        if !principal.covers(&principal.tenant, unit) {
            return api_error(
                &hub,
                ErrorCode::AlertNotFound,
                &format!("alert {alert_id} not found"),
            );
        }
        items.push(data);
    }
    if items.is_empty() {
        return api_error(
            &hub,
            ErrorCode::AlertNotFound,
            &format!("alert {alert_id} not found"),
        );
    }
    json_ok(serde_json::json!({"alertId": alert_id, "history": items}).to_string())
}

/// `GET /ws`: authenticates, then upgrades with axum's [`WebSocketUpgrade`] (frames and
/// messages capped at [`session::MAX_MESSAGE`]) and serves the socket as a [`session`].
async fn ws_upgrade(
    State(hub): State<Arc<Hub>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Response {
    let Some(principal) = authorize(&hub, &req) else {
        return unauthorized(&hub);
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            let why = rejection.body_text();
            return api_error(
                &hub,
                ErrorCode::BadRequest,
                &format!("expected a WebSocket (version 13) upgrade: {why}"),
            );
        }
    };
    if hub.metrics.connected.load(Relaxed) >= hub.config.max_connections as u64 {
        hub.metrics.rejected_capacity.fetch_add(1, Relaxed);
        return json_error(ErrorCode::Unavailable, "too many connections");
    }
    upgrade
        .max_message_size(session::MAX_MESSAGE)
        .max_frame_size(session::MAX_MESSAGE)
        .read_buffer_size(4096)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |ws| session::run(ws, principal, hub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_with_total_and_drops_eof() {
        let om = "# HELP a_total_x Help.\n# TYPE a_total_x gauge\na_total_x 1\n\
                  # HELP c Some counter.\n# TYPE c counter\nc_total{k=\"v\"} 2\n\
                  # HELP h A histogram.\n# TYPE h histogram\nh_count 0\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP a_total_x Help.\n# TYPE a_total_x gauge\na_total_x 1\n\
             # HELP c_total Some counter.\n# TYPE c_total counter\nc_total{k=\"v\"} 2\n\
             # HELP h A histogram.\n# TYPE h histogram\nh_count 0\n"
        );
    }
}
