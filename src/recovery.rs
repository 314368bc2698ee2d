//! Recovery at start (docs/recovery.md): rebuild every patient window from the `VITALS` the
//! durable consumer had already acknowledged over the window horizon, and the appointments,
//! waiting areas, providers and resources from `CHECKINS` then `OCCUPANCY` over
//! `engine.practice_horizon`; then restore every alert `ALERTS` holds open, with its level,
//! policy snapshot, page and deadlines. `/readyz` turns ready only after this returns.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_actors::Shards;
use vigil_config::Config;
use vigil_engine::Alert;
use vigil_engine::{Reading, Timestamp};
use vigil_streams::bus::StoredMessage;
use vigil_streams::outbox::Outbox;
use vigil_streams::{
    Bus, Delivery, Encoding, EventSink, batch_receipt, decode_practice, decode_vitals, wall_clock,
};

use crate::engine::Scope;
use crate::practice::PracticeSink;

/// Replays acknowledged `CHECKINS`, then `OCCUPANCY` (occupancy looks up appointments'
/// locations), through the same sink as live events in history mode: the desk and the
/// practice actors are rebuilt, nothing is published. Returns the events replayed.
async fn replay_practice(
    bus: &Bus,
    cfg: &Config,
    scope: &Scope,
    sink: &mut PracticeSink,
) -> anyhow::Result<u64> {
    let horizon = cfg.engine.practice_horizon.as_std();
    let mut events = 0u64;
    sink.history = true;
    for (stream, part) in ["CHECKINS", "OCCUPANCY"]
        .into_iter()
        .flat_map(|s| scope.parts().into_iter().map(move |p| (s, p)))
    {
        let floor = bus.ack_floor(stream, &cfg.nats.consumer, part).await?;
        let (tx, mut rx) = mpsc::channel(4);
        let read = bus.acknowledged(stream, part, floor, horizon, tx);
        let apply = async {
            let (receipt, done) = batch_receipt();
            let now = wall_clock();
            let mut n = 0u64;
            while let Some(chunk) = rx.recv().await {
                for StoredMessage {
                    subject,
                    payload,
                    content_type,
                    ..
                } in chunk
                {
                    let Ok(enc) = Encoding::from_content_type(content_type.as_deref()) else {
                        continue;
                    };
                    let Ok(event) = decode_practice(stream, &subject, &payload, enc, now) else {
                        continue;
                    };
                    let origin = Delivery::Embedded {
                        subject,
                        payload,
                        content_type,
                    };
                    // A refusal was dead-lettered when the event first arrived.
                    if sink.accept(event, &origin).is_ok() {
                        n += 1;
                    }
                }
                sink.dispatch(receipt.clone()).await;
            }
            drop(receipt);
            (n, done.await.is_ok())
        };
        let (read, (n, applied)) = tokio::join!(read, apply);
        read?;
        if !applied {
            anyhow::bail!("a practice shard stopped while {stream} was replayed; recovery failed");
        }
        events += n;
    }
    sink.history = false;
    Ok(events)
}

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Acknowledged `VITALS`, `CHECKINS` and `OCCUPANCY` events replayed.
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

/// How far back a resolved alert is handed to its patient: the horizon, and further when
/// `VITALS` is delivered again from further back. Whatever is delivered again after a restart
/// was stored after the last reading the consumer acknowledged (after the stream's first,
/// when it acknowledged none: a consumer deleted or renamed delivers the stream from its
/// start), so every transition it derives again was written after that (a minute's leeway
/// for the engine's and the server's clocks) (docs/recovery.md). `floors`: each partition's
/// `VITALS` ack floor.
async fn resolved_since(
    bus: &Bus,
    floors: &[u64],
    horizon: Duration,
) -> Result<Timestamp, vigil_streams::BusError> {
    const CLOCKS: i64 = 60_000;
    let mut since = wall_clock().plus_millis(-i64::try_from(horizon.as_millis()).unwrap_or(0));
    for floor in floors {
        if let Some(stored) = bus.delivered_again_after("VITALS", *floor).await? {
            since = since.min(stored.plus_millis(-CLOCKS));
        }
    }
    Ok(since)
}

/// Runs recovery against `bus` into `shards`, for what `scope` owns: every stream and alert, or
/// the partitions a cluster member holds (the stored events of those partitions, the alerts
/// whose owners' events are in them).
///
/// # Errors
/// When `VITALS` or `ALERTS` cannot be read: the engine must not report ready without its
/// open alerts.
pub async fn recover(
    bus: &Bus,
    cfg: &Config,
    scope: &Scope,
    shards: &Shards,
    outbox: &Outbox,
    practice: &mut PracticeSink,
) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel(4);
    let horizon = horizon(cfg);
    // Each partition's ack floor, read once: it bounds both the rebuild and the resolved
    // alerts handed over below (the consumers are not bound yet, so it stays put).
    let read = async {
        let mut floors = Vec::new();
        for part in scope.parts() {
            let floor = bus.ack_floor("VITALS", &cfg.nats.consumer, part).await?;
            bus.acknowledged("VITALS", part, floor, horizon, tx.clone())
                .await?;
            floors.push(floor);
        }
        drop(tx);
        Ok::<_, vigil_streams::BusError>(floors)
    };
    let apply = async {
        let (receipt, done) = batch_receipt();
        let now = wall_clock();
        let mut events = 0u64;
        while let Some(chunk) = rx.recv().await {
            let readings: Vec<Reading<'static>> = chunk
                .iter()
                .filter_map(|m| {
                    // Rejected events were dead-lettered when they first arrived.
                    let enc = Encoding::from_content_type(m.content_type.as_deref()).ok()?;
                    decode_vitals(&m.subject, &m.payload, enc, now)
                        .ok()
                        .map(Reading::into_owned)
                })
                .collect();
            events += readings.len() as u64;
            if !shards.deliver_history(readings, receipt.clone()).await {
                vigil_streams::receipt::fail(&receipt);
            }
        }
        drop(receipt);
        (events, done.await.is_ok())
    };
    let (read, (mut events, applied)) = tokio::join!(read, apply);
    let floors = read?;
    if !applied {
        anyhow::bail!("a patient shard stopped while VITALS was replayed; recovery failed");
    }
    events += replay_practice(bus, cfg, scope, practice).await?;

    // Open alerts, and those resolved since `since`: the rebuilt windows must not re-open a
    // condition someone just resolved, and the readings delivered again next must not publish
    // again an alert they derive again (docs/recovery.md).
    let mut alerts: Vec<Alert> = Vec::new();
    let mut unreadable = 0;
    let since = resolved_since(bus, &floors, horizon).await?;
    // What each restored alert's next transition must follow on its subject: a newer message
    // there (another engine's) refuses it (docs/reliability.md, fencing).
    let mut fences = Vec::new();
    for stored in bus.alert_states().await? {
        match Alert::from_envelope(&stored.payload) {
            Ok(a) if !scope.holds(&a) => {}
            Ok(a) if a.is_active() || a.transition.at >= since => {
                if a.is_active() {
                    fences.push((stored.subject, stored.sequence));
                }
                alerts.push(a);
            }
            Ok(_) => {}
            Err(e) => {
                unreadable += 1;
                tracing::error!(error = %e, "a stored alert state cannot be read: that alert is not restored (counted in vigil_recovery_unreadable_alerts)");
            }
        }
    }
    // Before the actors hold them: a missed deadline fires at once on recovery.
    outbox.follow(fences).await;
    // Only the owners of the scope: a cluster member recovering partitions it took over runs
    // others on the same actors.
    let open = shards.recover(alerts, scope.within()).await;
    Ok(Recovered {
        events,
        alerts: open,
        unreadable,
        elapsed: started.elapsed(),
    })
}
