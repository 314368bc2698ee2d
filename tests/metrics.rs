//! `/metrics` as a Prometheus operator meets it: valid for `promtool check metrics` (HELP and
//! TYPE on every family, names as the format wants them), in the classic text format by default
//! and OpenMetrics when asked, after real traffic. A missing promtool fails the test with how to
//! install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use async_nats::jetstream;
use common::*;

fn promtool() -> std::path::PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin"])
    {
        let p = std::path::PathBuf::from(dir).join("promtool");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "promtool not found: this test checks /metrics with it. Install Debian's `prometheus` \
         package (apt-get install prometheus); ./scripts/test does when it is missing."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_speak_openmetrics_when_asked() {
    let promtool = promtool();
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    make_critical(&js, "clinic-abc", "patient-1").await;
    publish_json(
        &js,
        "vitals.clinic-abc.patient-2",
        &serde_json::json!({"not": "an envelope"}),
    )
    .await;
    for _ in 0..100 {
        if engine.metric("vigil_alert_transitions_total").await >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, body) = http_get(&engine.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(!body.contains("# EOF"), "classic text by default");
    assert!(body.contains("# HELP vigil_dlq_total "), "{body}");
    assert!(
        body.contains("vigil_alert_open_delay_seconds_count 1"),
        "{body}"
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A scraper asking for OpenMetrics gets it.
    let mut s = tokio::net::TcpStream::connect(&engine.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.contains("content-type: application/openmetrics-text"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(text.contains("# TYPE vigil_dlq counter"), "{text}");
}
