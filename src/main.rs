//! `vigil`: the binary. CLI, wiring of the crates, shutdown. Thin on purpose: every decision of
//! substance lives in a library crate.

mod cluster;
mod demo;
mod engine;
mod practice;
mod recovery;
mod replay;
mod wiring;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use vigil_config::Config;
use vigil_gateway::Hub;
use vigil_streams::{Bus, IngestMetrics};

/// The engine allocates many small short-lived objects per event (decode, hand-off, scores):
/// mimalloc serves them several times faster than glibc malloc under two busy threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vigil", version, about = "Real-time clinical alerting engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run against NATS JetStream.
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// NATS URL (overrides the file and VIGIL_NATS_URL).
        #[arg(long)]
        nats_url: Option<String>,
        /// Gateway address (overrides the file and VIGIL_LISTEN).
        #[arg(long, value_parser = listen_address)]
        listen: Option<String>,
    },
    /// A simulated ward on an embedded bus: no services needed.
    Demo {
        /// Gateway address.
        #[arg(long, value_parser = listen_address)]
        listen: Option<String>,
        /// Simulated patients.
        #[arg(long, default_value_t = 200)]
        patients: usize,
        /// Optional configuration file (tokens, rules); demo tokens are added when it has none.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replay recorded patients through the engine and report what the rules would have done.
    Replay(replay::Args),
}

/// `--listen`: refused at once, naming the flag, unless it is `host:port`.
fn listen_address(text: &str) -> Result<String, String> {
    text.parse::<std::net::SocketAddr>()
        .map(|_| text.to_string())
        .map_err(|_| format!("expected host:port, e.g. 127.0.0.1:8080 (not `{text}`)"))
}

fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        // Colour only for a person at a terminal; a log file or a collector gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Replay is CPU-bound on its own threads; only `run` and `demo` start the async runtime.
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("vigil-io")
            .build()
            .context("cannot start the tokio runtime")
    };
    match cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Run {
            config,
            nats_url,
            listen,
        } => {
            let mut cfg = Config::load(&config)?;
            cfg.apply_env(|k| std::env::var(k).ok())?;
            if cfg.auth.tokens.is_empty() {
                bail!(
                    "no tokens in {}: add at least one [[auth.tokens]] (without one nobody \
                     can connect to the gateway)",
                    config.display()
                );
            }
            if let Some(url) = nats_url {
                cfg.nats.url = Some(url);
            }
            if let Some(listen) = listen {
                cfg.gateway.listen = listen;
            }
            let Some(url) = cfg.nats.url.clone() else {
                bail!(
                    "no NATS URL: set [nats] url in {}, VIGIL_NATS_URL, or --nats-url",
                    config.display()
                );
            };
            runtime()?.block_on(serve(cfg, BusSource::Nats(url), None))
        }
        Command::Demo {
            listen,
            patients,
            config,
        } => {
            let mut cfg = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            cfg.apply_env(|k| std::env::var(k).ok())?;
            if let Some(listen) = listen {
                cfg.gateway.listen = listen;
            }
            if cfg.auth.tokens.is_empty() {
                cfg.auth.tokens = demo::tokens();
            }
            demo::compressed_delay_rules(&mut cfg.rules);
            if cfg.cluster.take().is_some() {
                tracing::warn!(
                    "vigil demo is one process on the embedded bus; [cluster] is ignored"
                );
            }
            cfg.validate("<demo>")?;
            runtime()?.block_on(serve(
                cfg,
                BusSource::Embedded(Bus::embedded(4096)),
                Some(patients),
            ))
        }
    }
}

/// Where the engine's bus comes from.
enum BusSource {
    /// The demo's in-process bus.
    Embedded(Bus),
    /// NATS at this URL, connected once the gateway is up: `/healthz` answers from the start
    /// and `/readyz` says why the engine is not ready while NATS cannot be reached.
    Nats(String),
}

/// How long to wait between attempts to reach NATS at start.
const NATS_RETRY: Duration = Duration::from_secs(2);

/// Connects to NATS and sets up the streams, retrying until it works; each failure is logged
/// with the address and the reason, and shown by `/readyz`.
///
/// # Errors
/// What retrying cannot mend (a seed list entry that is no address, replicas a single server
/// cannot hold): the engine stops, naming the key to change.
async fn connect_nats(url: &str, cfg: &Config, hub: &Hub) -> anyhow::Result<Bus> {
    let shown = vigil_streams::redacted(url);
    let mut attempt = 0u32;
    loop {
        match Bus::connect(url, cfg).await {
            Ok(bus) => {
                tracing::info!(url = %shown, "connected to NATS; streams ready");
                return Ok(bus);
            }
            Err(e) if e.fault() == vigil_streams::Fault::Permanent => bail!("{e}"),
            Err(e) => {
                attempt += 1;
                tracing::warn!(url = %shown, attempt, error = %e, "NATS not usable yet; retrying in 2 s");
                // A connect error names the address itself; the others do not.
                let why = match &e {
                    vigil_streams::BusError::Connect { .. } => e.to_string(),
                    _ => format!("NATS at {shown}: {e}"),
                };
                hub.set_starting(format!("waiting: {why} (retrying every 2 s)"));
                tokio::time::sleep(NATS_RETRY).await;
            }
        }
    }
}

/// A runtime owned by an async function: shut down without blocking when it drops (dropping
/// a runtime inside another one would panic).
struct Background {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Background {
    fn new(runtime: tokio::runtime::Runtime) -> Self {
        let handle = runtime.handle().clone();
        Self {
            runtime: Some(runtime),
            handle,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The gateway on its own threads: a thousand dashboards must not queue the ingest loop, the
/// decoders and the outbox behind their tasks. On separate threads the kernel shares the cores
/// between them.
pub(crate) struct Gateway {
    /// Where it listens (the port the OS chose when the config says 0).
    pub(crate) local: std::net::SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    done: bool,
    _runtime: Background,
}

impl Gateway {
    /// Binds `addr` and serves the hub's routes on the `vigil-gateway` runtime.
    async fn start(addr: std::net::SocketAddr, hub: Arc<Hub>) -> anyhow::Result<Gateway> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let runtime = Background::new(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("vigil-gateway")
                .build()
                .context("cannot start the gateway's runtime")?,
        );
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let listener = listener.into_std()?;
        let task = runtime.handle.spawn(async move {
            let listener = TcpListener::from_std(listener)?;
            vigil_gateway::serve(listener, hub, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        });
        // Scripts and operators wait for this line (contracts.md §7): it is written even when
        // the log filter hides INFO.
        if tracing::enabled!(tracing::Level::INFO) {
            tracing::info!("listening on {local}");
        } else {
            eprintln!("listening on {local}");
        }
        Ok(Gateway {
            local,
            task,
            stop,
            done: false,
            _runtime: runtime,
        })
    }

    /// Resolves if the gateway stops by itself, with why.
    pub(crate) async fn ended(&mut self) -> String {
        let r = (&mut self.task).await;
        self.done = true;
        match r {
            Ok(Ok(())) => "the gateway ended".to_string(),
            Ok(Err(e)) => format!("the gateway stopped: {e}"),
            Err(e) => format!("the gateway task failed: {e}"),
        }
    }

    /// Closes every connection (1001) and waits for them, at most 5 s.
    async fn stop(self) {
        self.stop.send_replace(true);
        if !self.done {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        }
    }
}

/// The hub the gateway serves, with `/metrics` covering ingest and the NATS link, and
/// `/readyz` failing while NATS is away or once a part of the engine has stopped.
fn hub(
    cfg: &Config,
    metrics: &Arc<IngestMetrics>,
    link: &Arc<std::sync::OnceLock<Arc<vigil_streams::Link>>>,
    stopped: &Arc<std::sync::OnceLock<String>>,
) -> Arc<Hub> {
    let hub = Hub::new(
        cfg,
        vec![
            metrics.clone(),
            Arc::new(vigil_streams::LinkMetrics(link.clone())),
        ],
    );
    let (link, stopped) = (link.clone(), stopped.clone());
    hub.set_readiness(Arc::new(move || {
        if let Some(what) = stopped.get() {
            return Err(format!("{what}; the engine is shutting down"));
        }
        match link.get() {
            Some(link) if !link.is_connected() => {
                Err("not connected to NATS (reconnecting): events cannot be stored".into())
            }
            _ => Ok(()),
        }
    }));
    hub
}

/// Runs the gateway and the engine until SIGINT/SIGTERM or until a part ends by itself, then
/// drains and returns (an error naming the part that ended, so a supervisor restarts us).
async fn serve(cfg: Config, source: BusSource, demo_patients: Option<usize>) -> anyhow::Result<()> {
    // The threshold profiles and the sepsis model, read and checked once, before anything
    // listens or connects; every engine start (a cluster member's too) shares them.
    let profiles = Arc::new(engine::profiles(&cfg)?);
    let signalled = shutdown_signal()?;
    tokio::pin!(signalled);
    let metrics = Arc::new(IngestMetrics::default());
    // The NATS link, known once connected (metrics and readiness read it).
    let link: Arc<std::sync::OnceLock<Arc<vigil_streams::Link>>> = Arc::default();
    // Set when a part ends by itself: readiness fails with it.
    let stopped: Arc<std::sync::OnceLock<String>> = Arc::default();
    let hub = hub(&cfg, &metrics, &link, &stopped);

    // The gateway first: health probes and operators get answers while NATS is still away.
    let mut gateway = Gateway::start(cfg.listen_addr()?, hub.clone()).await?;
    let bus = match source {
        BusSource::Embedded(bus) => bus,
        BusSource::Nats(url) => {
            hub.set_starting(format!(
                "connecting to NATS at {}",
                vigil_streams::redacted(&url)
            ));
            tokio::select! {
                bus = connect_nats(&url, &cfg, &hub) => match bus {
                    Ok(bus) => bus,
                    Err(e) => {
                        gateway.stop().await;
                        return Err(e);
                    }
                },
                () = &mut signalled => {
                    tracing::info!("stopped before NATS was reachable");
                    gateway.stop().await;
                    return Ok(());
                }
            }
        }
    };
    if let Some(l) = bus.link() {
        let _ = link.set(l);
    }
    if let Some(cluster) = cfg.cluster.clone()
        && demo_patients.is_none()
    {
        let ended = cluster::serve(
            &cfg,
            &profiles,
            &cluster,
            &bus,
            &hub,
            &metrics,
            &mut gateway,
            signalled.as_mut(),
        )
        .await;
        if let Ok(Some(what)) = &ended {
            let _ = stopped.set(what.clone());
        }
        gateway.stop().await;
        return match ended? {
            Some(what) => Err(anyhow::anyhow!("{what}")),
            None => {
                tracing::info!("stopped cleanly");
                Ok(())
            }
        };
    }
    let mut running =
        engine::Engine::start(&cfg, &profiles, &engine::Scope::All, &bus, &hub, &metrics).await?;
    metrics
        .partitions_owned
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let simulator = demo_patients.map(|n| {
        demo::print_banner(gateway.local, n);
        let (ward, clinic) = (bus.clone(), bus.clone());
        tokio::spawn(async move {
            tokio::join!(demo::simulate_ward(ward, n), demo::simulate_clinic(clinic));
        })
    });

    let failure = tokio::select! {
        what = running.ended() => Some(what.to_string()),
        what = gateway.ended() => Some(what),
        () = &mut signalled => None,
    };
    match &failure {
        Some(what) => {
            // Unready first, so a load balancer stops sending staff here, then drain.
            let _ = stopped.set(what.clone());
            tracing::error!(stopped = %what, "an internal task ended unexpectedly; shutting down so a supervisor restarts the engine");
        }
        None => tracing::info!("shutting down: draining in-flight events"),
    }
    // Unready at once: a load balancer stops sending here, commands are refused (retry
    // elsewhere) while the work in flight drains.
    hub.set_starting("shutting down: draining in-flight events");
    hub.set_ready(false);
    if let Some(sim) = &simulator {
        sim.abort();
    }
    running.stop().await?;
    gateway.stop().await;
    if let Some(what) = failure {
        bail!("{what}");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when it
/// is first polled: a signal that arrives while the engine is still starting (after `/readyz`
/// turned 200 but before the main loop waits on it) must drain, not kill the process.
///
/// # Errors
/// When a signal handler cannot be installed.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
