//! Recovery at start (docs/recovery.md): rebuild every patient window from the `VITALS` the
//! durable consumer had already acknowledged over the window horizon, then restore every alert
//! `ALERTS` holds open, with its level, policy snapshot, page and deadlines. `/readyz` turns
//! ready only after this returns.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_actors::{PatientInput, PatientShards};
use vigil_config::Config;
use vigil_engine::Alert;
use vigil_streams::{Bus, Encoding, batch_receipt, decode_vitals, wall_clock};

use crate::wiring::to_input;

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Acknowledged `VITALS` events replayed into the windows.
    pub events: u64,
    /// Alerts `ALERTS` holds open (installed into their patients).
    pub alerts: usize,
    /// Stored alert states that could not be read (logged, skipped).
    pub unreadable: usize,
    pub elapsed: Duration,
}

/// The longest window horizon of any profile: how far back `VITALS` is replayed.
fn horizon(cfg: &Config) -> Duration {
    cfg.profiles
        .iter()
        .filter_map(|p| p.scoring.horizon)
        .chain([cfg.scoring.horizon])
        .max()
        .map_or(Duration::from_secs(6 * 3600), |d| d.as_std())
}

/// Runs recovery against `bus` into `shards`.
///
/// # Errors
/// When `VITALS` or `ALERTS` cannot be read: the engine must not report ready without its
/// open alerts.
pub async fn recover(bus: &Bus, cfg: &Config, shards: &PatientShards) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel(4);
    let horizon = horizon(cfg);
    let read = bus.acknowledged_vitals(&cfg.nats.consumer, horizon, tx);
    let apply = async {
        let (receipt, done) = batch_receipt();
        let now = wall_clock();
        let mut events = 0u64;
        while let Some(chunk) = rx.recv().await {
            let inputs: Vec<PatientInput> = chunk
                .iter()
                .filter_map(|(subject, payload, content_type)| {
                    // Rejected events were dead-lettered when they first arrived.
                    let enc = Encoding::from_content_type(content_type.as_deref()).ok()?;
                    decode_vitals(subject, payload, enc, now).ok().map(to_input)
                })
                .collect();
            events += inputs.len() as u64;
            shards.deliver_history(inputs, receipt.clone()).await;
        }
        drop(receipt);
        let _ = done.await;
        events
    };
    let (read, events) = tokio::join!(read, apply);
    read?;

    // Open alerts, and those a person resolved within the horizon: the rebuilt windows must not
    // re-open a condition someone just resolved (docs/recovery.md).
    let mut alerts: Vec<Alert> = Vec::new();
    let mut unreadable = 0;
    let since = wall_clock().plus_millis(-i64::try_from(horizon.as_millis()).unwrap_or(0));
    for payload in bus.alert_states().await? {
        match Alert::from_envelope(&payload) {
            Ok(a) if a.is_active() || (a.resolved_by_person() && a.transition.at >= since) => {
                alerts.push(a);
            }
            Ok(_) => {}
            Err(e) => {
                unreadable += 1;
                tracing::warn!(error = %e, "a stored alert state cannot be read; skipped");
            }
        }
    }
    let open = shards.recover(alerts).await;
    Ok(Recovered {
        events,
        alerts: open,
        unreadable,
        elapsed: started.elapsed(),
    })
}
