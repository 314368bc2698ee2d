//! What an operator meets first, with the real binary: a bad `--listen` or `VIGIL_LISTEN` is
//! refused at once naming where it came from, a configuration without tokens is refused (nobody
//! could ever connect), a NATS setting that can never work stops the engine naming the key, and
//! logs written anywhere but a terminal carry no colour codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;

fn vigil(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("VIGIL_NATS_URL")
        .output()
        .expect("run vigil");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "vigil-cli-{}-{}.toml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bad_listen_address_is_refused_before_anything_starts_naming_its_source() {
    // Nothing listens on this NATS address: the refusal must come first, and fast.
    let path = config(&format!("[nats]\nurl = \"nats://127.0.0.1:1\"\n{TOKENS}"));
    let p = path.to_str().unwrap();
    let (ok, err) = vigil(&["run", "--config", p, "--listen", "8080"], &[]);
    assert!(!ok);
    assert!(err.contains("--listen"), "{err}");
    assert!(err.contains("expected host:port"), "{err}");
    let (ok, err) = vigil(&["demo", "--listen", "localhost"], &[]);
    assert!(!ok);
    assert!(err.contains("--listen"), "{err}");
    let (ok, err) = vigil(&["run", "--config", p], &[("VIGIL_LISTEN", "8080")]);
    assert!(!ok);
    assert!(err.contains("environment variable VIGIL_LISTEN"), "{err}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_configuration_without_tokens_is_refused() {
    let path = config("[nats]\nurl = \"nats://127.0.0.1:1\"\n");
    let (ok, err) = vigil(&["run", "--config", path.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("no tokens") && err.contains("[[auth.tokens]]"),
        "{err}"
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let log = engine.log.lock().unwrap().join("\n");
    assert!(log.contains("recovery finished"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in a piped log: {log:?}"
    );
}

/// What retrying cannot mend stops the engine at once, naming the key to change: replicas a
/// single server cannot hold, and a seed list entry that is no address. It does not retry
/// every 2 s forever while looking merely "not ready".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_setting_that_can_never_work_stops_the_engine_naming_the_key() {
    let nats = NatsServer::start();
    for (url, extra, says) in [
        (
            nats.url.as_str(),
            "[cluster]\nmember = \"m\"\nreplicas = 3",
            "[cluster] replicas = 3 needs a NATS cluster",
        ),
        (
            "nats://127.0.0.1:4222,nats://127.0.0.1:99999",
            "",
            "[nats] url: nats://127.0.0.1:99999 is not a NATS server address",
        ),
    ] {
        let mut engine = Engine::start_on(url, "", extra);
        let exit = engine.wait_exit(10).expect("the engine stopped by itself");
        assert!(!exit.success(), "{exit:?}");
        let log = engine.log.lock().unwrap().join("\n");
        assert!(log.contains(says), "{log}");
        assert!(!log.contains("retrying in 2 s"), "{log}");
    }
}
