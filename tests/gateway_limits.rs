//! Issue 13's gateway defects end to end, with the real binary and real sockets: a flood of
//! idle TCP connections is refused at the door while a health probe and a connected dashboard
//! are served throughout; a WebSocket that never subscribes is closed as idle (1008), one that
//! stops answering pings is closed as unresponsive (1011); a client's close is answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::*;

const T: &str = "clinic-abc";

/// A cap of 200 open connections (so at most 50 may wait for their first request), quick
/// timeouts so the test does not wait long.
const LIMITS: &str = r#"
[gateway]
listen = "127.0.0.1:0"
max_open_connections = 200
header_timeout = "2s"
idle_timeout = "1s"
ping_interval = "1s"
"#;

/// The engine's config with `[gateway]` replaced by ours (the harness writes its own first).
fn engine(nats: &NatsServer) -> Engine {
    Engine::start_with(nats, LIMITS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_sockets_is_refused_at_the_door_and_staff_keep_their_alerts() {
    let nats = NatsServer::start();
    let engine = engine(&nats);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts"]).await;

    // 2,000 sockets that never send a byte, ten times the cap; probes and an alert meanwhile.
    let mut idle = Vec::new();
    for round in 0..20 {
        for _ in 0..100 {
            if let Ok(s) = tokio::net::TcpStream::connect(&engine.addr).await {
                idle.push(s);
            }
        }
        let (status, body) = http_get(&engine.addr, "/healthz").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "ok\n"),
            "probe in round {round}"
        );
        if round == 10 {
            make_critical(&js, T, "patient-1").await;
        }
    }
    let alert = nurse.next_of("alert", 10).await;
    assert_eq!(alert["alert"]["patientId"], "patient-1");
    // The pending sockets were pushed out; the open ones never exceeded the cap.
    let open = engine.metric("vigil_http_open_connections").await;
    assert!(open <= 200.0, "{open}");
    assert_eq!(
        engine.metric("vigil_http_open_connections_limit").await,
        200.0
    );
    assert!(engine.metric("vigil_http_evicted_pending_total").await >= 1900.0);
    // A new dashboard can still connect, and is served its snapshot.
    let mut charge = Client::connect(&engine.ws_url("admin-abc-token")).await;
    let snapshot = charge.subscribe(&["alerts"]).await;
    assert_eq!(snapshot["alerts"].as_array().unwrap().len(), 1);
    // The idle sockets that are left are closed once the header timeout passes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(engine.metric("vigil_http_header_timeouts_total").await >= 1.0);
    drop(idle);
    assert_eq!(http_get(&engine.addr, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_unresponsive_sockets_are_closed_and_a_close_is_answered() {
    let nats = NatsServer::start();
    let engine = engine(&nats);
    engine.wait_ready().await;

    // Never subscribes, never sends: closed as idle with 1008.
    let mut quiet = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    assert_eq!(quiet.close_code(10).await, Some(1008));
    assert!(engine.metric("vigil_ws_idle_closes_total").await >= 1.0);

    // Subscribes, then stops reading (a frozen pager): pings go unanswered, closed with 1011.
    let mut frozen = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    frozen.subscribe(&["alerts"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(frozen.close_code(10).await, Some(1011));
    assert!(engine.metric("vigil_ws_ping_timeouts_total").await >= 1.0);

    // A client that reads answers the pings (tungstenite does it while reading) and stays.
    let mut live = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    live.subscribe(&["alerts"]).await;
    live.none_of("alert", 3).await;
    // A normal disconnect is answered with a close frame, not a dropped socket.
    assert_eq!(live.close().await, Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_that_stops_reading_is_closed_with_1013_and_the_others_get_every_alert() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    // A dashboard whose socket takes little before it stops reading: a small receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(engine.addr.parse().unwrap()).await.unwrap();
    let mut stalled = Client::over(tcp, &engine.ws_url("admin-abc-token")).await;
    stalled.subscribe(&["alerts"]).await;
    let mut reader = Client::connect(&engine.ws_url("admin-abc-token")).await;
    reader.subscribe(&["alerts"]).await;
    // 200 alerts, about half a megabyte of frames: more than the stalled socket's buffers.
    const PATIENTS: usize = 200;
    for p in 0..PATIENTS {
        make_critical(&js, T, &format!("patient-{p}")).await;
    }
    // The reader gets every alert.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < PATIENTS {
        let f = reader.next_of("alert", 15).await;
        seen.insert(f["alert"]["patientId"].as_str().unwrap().to_string());
    }
    // Once the engine has given up on it (writes blocked past the 5 s timeout), the stalled
    // dashboard reads at last: what was sent before it fell behind, then the contract's close
    // code, so it resyncs from a fresh snapshot.
    let mut closed = false;
    for _ in 0..300 {
        if engine.metric("vigil_ws_slow_client_closes_total").await >= 1.0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the stalled dashboard was never closed");
    assert_eq!(stalled.close_code(15).await, Some(1013));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_and_headers_are_refused_and_counted() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    // A 100 KiB text frame: closed with 1009, counted.
    let mut big = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    big.send_text(&"x".repeat(100 * 1024)).await;
    assert_eq!(big.close_code(10).await, Some(1009));
    assert_eq!(engine.metric("vigil_ws_oversize_closes_total").await, 1.0);
    // 100 KiB of headers: refused by the server (431), never buffered.
    let mut s = tokio::net::TcpStream::connect(&engine.addr).await.unwrap();
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(100 * 1024)
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert_eq!(engine.metric("vigil_http_oversize_heads_total").await, 1.0);
    // The gateway is unharmed.
    assert_eq!(http_get(&engine.addr, "/healthz").await.0, 200);
}
