//! `vigil demo` end to end: the embedded bus, the simulated ward and the simulated clinic, seen
//! through a real WebSocket: patients scored, and the clinic's chairs, providers and waiting
//! area live, scoped to the clinic coordinator's location.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Client;
use serde_json::Value;

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_a_ward_and_a_clinic_without_services() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["demo", "--listen", "127.0.0.1:0", "--patients", "20"])
        .env("RUST_LOG", "info")
        .env_remove("VIGIL_NATS_URL")
        .env_remove("VIGIL_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigil demo");
    let stderr = child.stderr.take().unwrap();
    let _demo = Demo(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on ") {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("listening");

    let url = |token: &str| format!("ws://{addr}/ws?token={token}");
    let mut coordinator = Client::connect(&url("demo-coordinator-clinic-1")).await;
    coordinator.subscribe(&["resources", "patients"]).await;
    let mut kinds = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while kinds.len() < 3 && tokio::time::Instant::now() < deadline {
        let Some(f) = coordinator.next(5).await else {
            continue;
        };
        assert_ne!(f["type"], "patient", "the ward is outside clinic-1: {f}");
        if f["type"] == "resource" {
            assert_eq!(f["unitId"], "clinic-1", "{f}");
            kinds.insert(f["kind"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["location", "provider", "resource"],
        "the clinic's waiting area, providers and chairs are live"
    );

    let mut admin = Client::connect(&url("demo-admin-token")).await;
    admin.subscribe(&["patients"]).await;
    let f: Value = admin.next_of("patient", 20).await;
    assert!(f["news2"].is_number(), "{f}");
    assert!(
        f["bedId"].as_str().is_some_and(|b| b.starts_with('b')),
        "the simulated monitors name their beds: {f}"
    );
}
