//! A cluster member's engine (docs/cluster.md): the engine runs the partitions this process
//! holds, and when the membership ([`vigil_streams::cluster`]) changes what it should hold, it
//! gives up the partitions that move and takes over the new ones while the others run on. A
//! hand-over is clean: the consumers of the partitions that move finish and acknowledge what
//! they applied, their owners stop, the outbox stores everything they produced, and only then
//! are the claims deleted and the pinned consumers unpinned, so the next owner recovers exactly
//! what this one left.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use vigil_config::{ClusterConfig, Config};
use vigil_engine::{Alert, AlertCommand, AlertState, CommandError};
use vigil_gateway::CommandPort;
use vigil_gateway::Hub;
use vigil_streams::cluster::{FrameRelay, Membership, relay_frames};
use vigil_streams::partition::partition_of_owner;
use vigil_streams::{Bus, IngestMetrics};

use crate::Gateway;
use crate::engine::{self, Engine, Running, Scope};

/// Resolved alerts older than this are not loaded into the hub when the follower starts (the
/// hub keeps resolved alerts an hour for late commands).
const RESOLVED_KEPT_MS: i64 = 3_600_000;

/// Feeds every alert transition `ALERTS` stores into the hub, whichever member wrote it: a
/// dashboard or pager on any member sees every alert and page of its scope. The hub keeps the
/// newest version of each alert, so the transitions this member's own engine publishes
/// directly are not shown twice.
async fn follow_alerts(bus: Bus, hub: Arc<Hub>) {
    loop {
        match bus.follow_alerts().await {
            Ok(mut transitions) => {
                while let Some(payload) = transitions.next().await {
                    match Alert::from_envelope(&payload) {
                        Ok(a)
                            if a.state == AlertState::Resolved
                                && vigil_streams::wall_clock().since(a.transition.at)
                                    > RESOLVED_KEPT_MS => {}
                        Ok(a) => hub.publish_alert(&a),
                        Err(e) => tracing::debug!(error = %e, "following ALERTS: not an alert"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow ALERTS; retrying in 1 s"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The hub's patient and resource frames, relayed to and from the other members: a dashboard
/// on any member sees every patient and resource of its scope.
struct HubFrames(Arc<Hub>);

impl FrameRelay for HubFrames {
    fn take(&self) -> Vec<Vec<u8>> {
        self.0.take_relay()
    }

    fn all(&self) -> Vec<Vec<u8>> {
        self.0.local_frames()
    }

    fn accept(&self, payload: &[u8]) {
        if let Err(e) = self.0.accept_relayed(payload) {
            self.0.metrics.relay_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, "a frame relay message from another member was dropped");
        }
    }
}

/// Where a command goes in a cluster: to this member's actors when the alert's partition is
/// one it runs, else to the partition's owner over NATS request/reply.
struct ClusterCommands {
    local: Arc<dyn CommandPort>,
    owned: BTreeSet<u32>,
    count: u32,
    bus: Bus,
    metrics: Arc<IngestMetrics>,
}

impl CommandPort for ClusterCommands {
    fn execute(
        &self,
        req: AlertCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>> {
        let p = partition_of_owner(&req.tenant, &req.owner, self.count);
        if self.owned.contains(&p) {
            return self.local.execute(req);
        }
        self.metrics.forwarded_commands.fetch_add(1, Relaxed);
        let bus = self.bus.clone();
        Box::pin(async move { vigil_streams::cluster::forward(&bus, p, &req).await })
    }

    /// From this member's actors when the patient's partition is one it runs, else asked of
    /// the partition's owner over NATS request/reply.
    fn patient(&self, tenant: String, patient_id: String) -> vigil_gateway::ViewFuture {
        let p = vigil_streams::partition::partition_of_key(&tenant, Some(&patient_id), self.count);
        if self.owned.contains(&p) {
            return self.local.patient(tenant, patient_id);
        }
        let bus = self.bus.clone();
        Box::pin(async move {
            let req = vigil_streams::cluster::ViewRequest { tenant, patient_id };
            vigil_streams::cluster::forward_view(&bus, p, &req).await
        })
    }
}

/// Lifts this member's pins on `parts` of every inbound stream, once their claims are deleted:
/// the next owner is pinned at its next pull instead of after `failover`.
async fn unpin(bus: &Bus, consumer: &str, parts: &[u32]) {
    for &p in parts {
        for stream in vigil_streams::metrics::INBOUND_STREAMS {
            if let Err(e) = bus.unpin(stream, consumer, p).await {
                tracing::warn!(partition = p, stream, error = %e, "cannot unpin; the next owner waits for the pin to lapse");
            }
        }
    }
}

/// A member displaced again this soon after the last time is not a stale owner: it stops.
const DISPLACED_AGAIN: Duration = Duration::from_secs(60);

/// How long a stopping member tries to delete its claims and lift its pins.
const LEAVE_WAIT: Duration = Duration::from_secs(5);

/// What ended a member's run: `None` for a signal (clean stop), else the part that ended.
pub type Ended = Option<String>;

/// Runs this process as the cluster member `cluster.member` until a signal or until a part
/// ends by itself; the engine is stopped and the cluster left when it returns.
///
/// # Errors
/// When the bucket cannot be used or an engine cannot start.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    cfg: &Config,
    profiles: &Arc<vigil_engine::Profiles>,
    cluster: &ClusterConfig,
    bus: &Bus,
    hub: &Arc<Hub>,
    metrics: &Arc<IngestMetrics>,
    gateway: &mut Gateway,
    mut signalled: Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<Ended> {
    let Bus::JetStream(nats) = bus else {
        anyhow::bail!("[cluster] needs NATS JetStream; the embedded bus runs one process");
    };
    hub.set_starting(format!("joining the cluster as {}", cluster.member));
    let waiting_hub = hub.clone();
    let mut membership = tokio::select! {
        m = Membership::join(&nats.js, cluster, gateway.local.to_string(), move |why| {
            tracing::warn!("{why}");
            waiting_hub.set_starting(why);
        }) => m.context("cannot join the cluster")?,
        () = &mut signalled => return Ok(None),
    };
    let mut ownership = membership.ownership.clone();
    let (js, me, count) = (nats.js.clone(), cluster.member.clone(), cluster.partitions);
    hub.set_cluster(Arc::new(move || {
        let (js, me) = (js.clone(), me.clone());
        Box::pin(async move {
            let members = vigil_streams::cluster::members(&js)
                .await
                .map_err(|e| e.to_string())?;
            let members: Vec<serde_json::Value> = members
                .into_iter()
                .map(|m| {
                    serde_json::json!({
                        "member": m.member,
                        "partitions": m.partitions,
                        "listen": m.listen,
                        "lastHeartbeat": m.at,
                    })
                })
                .collect();
            Ok(serde_json::json!({
                "clustered": true,
                "member": me,
                "partitions": count,
                "members": members,
            }))
        })
    }));
    let follower = tokio::spawn(follow_alerts(bus.clone(), hub.clone()));
    hub.start_relaying();
    let relay = tokio::spawn({
        let (bus, member) = (bus.clone(), cluster.member.clone());
        let (every, frames) = (cfg.gateway.patient_flush.as_std(), HubFrames(hub.clone()));
        async move { relay_frames(&bus, &member, every, frames).await }
    });
    let mut answering: Option<tokio::task::JoinHandle<()>> = None;
    let pinned_for = cluster.failover.as_std();
    let mut running: Option<Running> = None;
    let mut owned: Vec<u32> = Vec::new();
    let mut last_displaced: Option<Instant> = None;
    // This member's command port: its own actors for `owned`, the owners' for the rest.
    let commands_for = |local: Arc<dyn CommandPort>, owned: BTreeSet<u32>| {
        Arc::new(ClusterCommands {
            local,
            owned,
            count: cluster.partitions,
            bus: bus.clone(),
            metrics: metrics.clone(),
        })
    };
    let ended = loop {
        let (keep, surplus) = {
            let o = ownership.borrow_and_update();
            (o.keep(), o.surplus.iter().copied().collect::<Vec<_>>())
        };
        if running.is_none() || keep != owned {
            let started = Instant::now();
            let moving = running.is_some();
            if let Some(a) = answering.take() {
                a.abort();
            }
            let kept: BTreeSet<u32> = keep.iter().copied().collect();
            let gone: Vec<u32> = owned
                .iter()
                .copied()
                .filter(|p| !kept.contains(p))
                .collect();
            let took: Vec<u32> = keep
                .iter()
                .copied()
                .filter(|p| !owned.contains(p))
                .collect();
            // The partitions that stay run on throughout: only those that move stop, drain,
            // and are forgotten. Commands for those are refused with a retry from now until
            // their next owner answers (not answered "not found" by actors already gone).
            if let Some(engine) = running.as_mut()
                && !gone.is_empty()
            {
                let staying = owned.iter().copied().filter(|p| kept.contains(p));
                hub.set_commands(commands_for(engine.commands(), staying.collect()));
                engine.give_up(&gone).await;
            }
            // Released only now that everything they produced is stored and acknowledged.
            let released: Vec<u32> = surplus
                .iter()
                .copied()
                .filter(|p| gone.contains(p))
                .collect();
            membership.release(surplus.clone()).await;
            unpin(bus, &cfg.nats.consumer, &released).await;
            let engine = match running.as_mut() {
                Some(engine) => {
                    if !took.is_empty() {
                        hub.set_ready(false);
                        hub.set_starting("taking partitions over: recovering them");
                        engine.take(&took).await?;
                        hub.set_ready(true);
                    }
                    engine
                }
                None => {
                    let scope = Scope::Partitions {
                        count: cluster.partitions,
                        owned: keep.clone(),
                        pinned_for,
                    };
                    running.insert(Engine::start(cfg, profiles, &scope, bus, hub, metrics).await?)
                }
            };
            let local = engine.commands();
            hub.set_commands(commands_for(local.clone(), kept.clone()));
            let (answer_bus, owned_now) = (bus.clone(), keep.clone());
            answering = Some(tokio::spawn(async move {
                let viewer = local.clone();
                tokio::join!(
                    vigil_streams::cluster::answer_commands(
                        &answer_bus,
                        owned_now.clone(),
                        move |req| local.execute(req)
                    ),
                    vigil_streams::cluster::answer_views(&answer_bus, owned_now, move |t, p| {
                        viewer.patient(t, p)
                    }),
                );
            }));
            metrics.partitions_owned.store(keep.len() as u64, Relaxed);
            if moving {
                metrics.handovers.fetch_add(1, Relaxed);
                metrics.handover.record(started.elapsed());
            }
            tracing::info!(
                member = %cluster.member,
                owns = ?keep,
                took = ?took,
                gave = ?gone,
                seconds = started.elapsed().as_secs_f64(),
                "hand-over: partitions now owned"
            );
            owned = keep;
        }
        let Some(engine) = running.as_mut() else {
            continue;
        };
        let displaced = tokio::select! {
            what = engine.ended() => match what {
                engine::Ended::Fenced(why) => format!("ALERTS refused a transition ({why})"),
                engine::Ended::Displaced => "a partition's consumer was recreated by another member".to_string(),
                what => break Some(what.to_string()),
            },
            what = gateway.ended() => break Some(what),
            what = membership.ended() => break Some(what),
            () = &mut signalled => break None,
            changed = ownership.changed() => {
                if changed.is_err() {
                    break Some("the cluster membership ended".into());
                }
                // Let a burst of changes (members joining together) settle into one restart.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // A stale owner: paused or cut off past `failover`, its partitions moved, and
        // `ALERTS` refused what it wrote or the new owner recreated a consumer under it. It
        // stops writing at once, gives up every partition, and takes a fair share again from
        // the membership's next beat, with a fresh recovery. Displaced again within
        // DISPLACED_AGAIN, it is not stale but wrong (for example a new `nats.consumer` over
        // old alerts): it stops for an operator.
        if last_displaced.is_some_and(|t: Instant| t.elapsed() < DISPLACED_AGAIN) {
            break Some(format!(
                "displaced twice within {} s: {displaced}",
                DISPLACED_AGAIN.as_secs()
            ));
        }
        last_displaced = Some(Instant::now());
        tracing::error!(
            member = %cluster.member,
            partitions = ?owned,
            "displaced: {displaced}, so another member owns these partitions now; this member stops writing, gives up every partition and takes a share again"
        );
        metrics.displaced.fetch_add(1, Relaxed);
        hub.set_ready(false);
        hub.set_starting(
            "displaced by another member: giving up every partition and taking a share again",
        );
        if let Some(a) = answering.take() {
            a.abort();
        }
        if let Some(r) = running.take() {
            r.stop().await?;
        }
        membership.release(owned.clone()).await;
        unpin(bus, &cfg.nats.consumer, &owned).await;
        owned.clear();
    };
    if let Some(what) = &ended {
        tracing::error!(stopped = %what, "an internal task ended unexpectedly; shutting down so a supervisor restarts the engine");
    } else {
        tracing::info!("shutting down: draining in-flight events");
    }
    hub.set_starting("shutting down: draining in-flight events");
    hub.set_ready(false);
    follower.abort();
    relay.abort();
    if let Some(a) = answering.take() {
        a.abort();
    }
    if let Some(r) = running {
        r.stop().await?;
    }
    // The claims deleted and the pins lifted, the next owners need not wait for `failover`.
    // With NATS away neither can be written: the shutdown does not wait for it longer than
    // LEAVE_WAIT, and the claims age out instead.
    let leave = async {
        membership.leave().await;
        unpin(bus, &cfg.nats.consumer, &owned).await;
    };
    if tokio::time::timeout(LEAVE_WAIT, leave).await.is_err() {
        tracing::warn!(
            "could not leave the cluster within 5 s (NATS away?); this member's claims age out after failover"
        );
    }
    Ok(ended)
}
