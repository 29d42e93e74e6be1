//! Starting and stopping a node: store, ingest writer, swarm, HTTP server.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use vouch_attest::PublicKey;

use crate::admission::Admission;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::ingest::{Ingest, IngestConfig};
use crate::metrics::Metrics;
use crate::p2p::behaviour::ConnectionCaps;
use crate::p2p::limits::AddressCaps;
use crate::p2p::{Network, NetworkConfig, NetworkTask, peer_id_of};
use crate::store::Store;

/// A running node.
pub struct Daemon {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// The store, for in-process callers.
    pub store: Store,
    /// The ingest pipeline, for in-process callers.
    pub ingest: Ingest,
    /// The swarm, when p2p is enabled.
    pub network: Option<Network>,
    network_task: Option<NetworkTask>,
    background: Vec<tokio::task::JoinHandle<()>>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
    data: DataDir,
}

impl Daemon {
    /// Initializes what is missing in `data`, opens the store, starts the
    /// swarm (unless disabled) and serves HTTP on `config.http.listen`.
    pub async fn start(data: DataDir, config: Config) -> Result<Daemon> {
        data.init()?;
        let key = data.load_key()?;
        let admin_token = data.load_admin_token()?;
        let store = Store::open(&data.store())
            .with_context(|| format!("opening the store in {}", data.store().display()))?;
        store
            .follow_own(&key.public_key())
            .context("counting the packages' standing")?;
        let metrics = Arc::new(Metrics::new());

        // Known signers: this node, the keyring, `trusted`. Bootstrap peers:
        // the config and the keyring.
        let mut known: BTreeSet<PublicKey> = BTreeSet::new();
        known.insert(key.public_key());
        for t in &config.admission.trusted {
            known.insert(
                t.parse()
                    .with_context(|| format!("[admission] trusted: `{t}`"))?,
            );
        }
        let mut bootstrap = Vec::new();
        for b in &config.p2p.bootstrap {
            bootstrap.push(
                b.parse::<Multiaddr>()
                    .with_context(|| format!("[p2p] bootstrap: `{b}` is not a multiaddr"))?,
            );
        }
        if let Some(dir) = &config.p2p.keyring {
            for entry in vouch_attest::read_keyring(dir)? {
                known.insert(entry.key);
                if entry.key == key.public_key() {
                    continue;
                }
                for m in &entry.multiaddrs {
                    let mut addr: Multiaddr = m.parse().with_context(|| {
                        format!("{}: `{m}` is not a multiaddr", entry.path.display())
                    })?;
                    if !matches!(addr.iter().last(), Some(Protocol::P2p(_)))
                        && let Some(peer) = peer_id_of(&entry.key)
                    {
                        addr.push(Protocol::P2p(peer));
                    }
                    bootstrap.push(addr);
                }
            }
        }
        let known_peers = known.iter().filter_map(peer_id_of).collect();
        // The researchers' counters follow this node and the signers it
        // knows, up to a bound (each tracked signer costs an index seek per
        // verdict of another).
        let mut tracked = vec![key.public_key()];
        tracked.extend(
            known
                .iter()
                .filter(|k| **k != key.public_key())
                .take(crate::store::stats::MAX_TRACKED - 1),
        );
        if known.len() > crate::store::stats::MAX_TRACKED {
            tracing::warn!(
                known = known.len(),
                tracked = tracked.len(),
                "statistics follow only the first {} known signers",
                crate::store::stats::MAX_TRACKED
            );
        }
        let started_stats = std::time::Instant::now();
        if store
            .track_signers(&tracked)
            .context("loading the statistics counters")?
        {
            tracing::info!(
                seconds = started_stats.elapsed().as_secs_f64(),
                "statistics counted again from the store"
            );
        }
        let admission = Arc::new(Admission::new(config.admission.clone(), known));

        let (outbound_tx, outbound_rx) = mpsc::channel(4096);
        let (ingest, writer) = Ingest::start(
            store.clone(),
            IngestConfig {
                max_group: config.ingest.max_group,
                max_pending_per_signer: config.ingest.max_pending_per_signer,
                ..IngestConfig::default()
            },
            metrics.clone(),
            admission,
            config.p2p.enabled.then_some(outbound_tx),
        );

        let (network, network_task) = if config.p2p.enabled {
            let mut listen = Vec::new();
            for l in &config.p2p.listen {
                listen.push(
                    l.parse::<Multiaddr>()
                        .with_context(|| format!("[p2p] listen: `{l}` is not a multiaddr"))?,
                );
            }
            if listen.is_empty() {
                bail!("[p2p] listen is empty; give an address or disable p2p");
            }
            let net_config = NetworkConfig {
                listen,
                bootstrap,
                mdns: config.p2p.mdns,
                sync_interval: Duration::from_secs(config.p2p.sync_interval_secs.max(1)),
                sync_peers: config.p2p.sync_peers.max(1),
                max_peers: config.p2p.max_peers.max(1),
                caps: ConnectionCaps {
                    pending_inbound: config.p2p.max_pending_inbound.max(1),
                    pending_outbound: u32::try_from(config.p2p.max_peers.max(1))
                        .unwrap_or(u32::MAX),
                    per_peer: config.p2p.max_connections_per_peer.max(1),
                    address: AddressCaps {
                        per_ip: config.p2p.max_inbound_per_ip.max(1),
                        per_subnet: config.p2p.max_inbound_per_subnet.max(1),
                        total: config.p2p.max_inbound,
                    },
                },
                known: known_peers,
                peer_requests_per_minute: config.p2p.peer_requests_per_minute,
                peer_messages_per_second: config.p2p.peer_messages_per_second,
                addr_file: Some(data.p2p_addr()),
            };
            let (n, t) = Network::start(
                &key,
                net_config,
                store.clone(),
                ingest.clone(),
                metrics.clone(),
                outbound_rx,
            )
            .await?;
            (Some(n), Some(t))
        } else {
            (None, None)
        };

        // The rebuild pipeline.
        let signer = Arc::new(crate::worker::Signer::new(
            data.load_key()?,
            store.clone(),
            ingest.clone(),
        ));
        let mut background = Vec::new();
        let mut authorized = Vec::new();
        for w in &config.workers.authorized {
            authorized.push(
                w.parse::<PublicKey>()
                    .with_context(|| format!("[workers] authorized: `{w}`"))?,
            );
        }
        let workers = Arc::new(crate::remote::WorkerAuth::new(authorized));
        let mut rebuild = None;
        if config.rebuild.workers > 0 || !config.sync.is_empty() || workers.any() {
            for p in &config.sync {
                p.check().map_err(|e| anyhow::anyhow!(e))?;
            }
            let work_root = data.root.join("work");
            std::fs::create_dir_all(&work_root)?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let http = reqwest::Client::builder()
                .user_agent(concat!("vouchd/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                // A mirror that stalls (no bytes for a minute) fails the
                // fetch instead of pinning a job while heartbeats keep its
                // lease alive; nothing takes longer than an hour.
                .read_timeout(Duration::from_secs(60))
                .timeout(Duration::from_secs(3600))
                .build()?;
            let ctx = crate::worker::WorkerContext {
                activity: Arc::new(crate::worker::Activity::default()),
                store: store.clone(),
                signer: signer.clone(),
                config: Arc::new(config.rebuild.clone()),
                http,
                metrics: metrics.clone(),
                work_root,
            };
            // A backend that builds in guests: does the guest boot here?
            for b in &config.rebuild.backends {
                if let crate::backend::BackendConfig::Debian(d) = &b.backend
                    && d.isolation == crate::backend::debian::Isolation::Vm
                {
                    let settings = d.vm.clone();
                    let distribution = b.distribution.clone();
                    tokio::spawn(async move {
                        match crate::backend::guest::startup_check(&settings).await {
                            Ok((sha, accel)) => tracing::info!(
                                %distribution, image_sha256 = %sha, accel,
                                "build guests boot{}",
                                if accel == "tcg" { " (software emulation)" } else { "" }
                            ),
                            Err(e) => tracing::warn!(
                                %distribution,
                                "build guests cannot run here, every job will FAIL: {e}"
                            ),
                        }
                    });
                }
            }
            background = crate::scheduler::spawn(ctx.clone(), config.sync.clone());
            rebuild = Some(ctx);
        }
        background.push(spawn_compressor(store.clone()));

        let state = AppState {
            store: store.clone(),
            ingest: ingest.clone(),
            metrics,
            admin_token: admin_token.into(),
            limits: Arc::new(config.http.clone()),
            node_key: key.public_key(),
            network: network.clone(),
            rebuild,
            workers,
            started: Instant::now(),
            evidence_quota: config.evidence.quota_mib.saturating_mul(1 << 20),
        };
        if let Some(n) = &network {
            crate::evidence::start(&store, n.clone(), config.evidence.clone());
        }
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding the HTTP API to {}", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        std::fs::write(data.http_addr(), format!("{http_addr}\n"))
            .with_context(|| format!("writing {}", data.http_addr().display()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let max_connections = config.http.max_connections;
        let request_timeout = Duration::from_secs(config.http.request_timeout_secs.max(1));
        let server = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            api::serve::serve(
                listener,
                api::app(state),
                max_connections,
                request_timeout,
                stopped,
            )
            .await;
        });
        tracing::info!(
            %http_addr,
            node = %key.public_key(),
            peer_id = ?network.as_ref().map(|n| n.peer_id.to_string()),
            data_dir = %data.root.display(),
            "vouchd serving"
        );
        Ok(Daemon {
            http_addr,
            store,
            ingest,
            network,
            network_task,
            background,
            stop,
            server,
            writer,
            data,
        })
    }

    /// Stops serving and the swarm, lets the writer finish what it holds,
    /// flushes.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("HTTP server task")?;
        for t in &self.background {
            t.abort();
        }
        if let Some(n) = &self.network {
            n.shutdown();
        }
        if let Some(t) = self.network_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        drop(self.network);
        drop(self.ingest);
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .context("joining the writer")?
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        self.store.persist_stats()?;
        self.store.flush()?;
        // Memtables written to tables now leave no journal to replay into
        // memory at the next start.
        self.store.settle()?;
        let _ = std::fs::remove_file(self.data.http_addr());
        let _ = std::fs::remove_file(self.data.p2p_addr());
        tracing::info!("vouchd stopped");
        Ok(())
    }
}

/// How often full segments are looked for and compressed.
const COMPRESS_EVERY: Duration = Duration::from_secs(60);

/// Compresses the store's full segments in the background (at start, then
/// every [`COMPRESS_EVERY`]). Stopping in the middle is safe: a segment's
/// raw file goes only once its compressed copy is complete.
fn spawn_compressor(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COMPRESS_EVERY);
        loop {
            tick.tick().await;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.compress_segments()).await {
                Ok(Ok(c)) if c.segments > 0 => tracing::info!(
                    segments = c.segments,
                    before = c.before,
                    after = c.after,
                    "compressed full segments"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("compressing full segments: {e}"),
                Err(e) => tracing::warn!("compressing full segments: {e}"),
            }
        }
    })
}
