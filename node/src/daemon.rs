//! Starting and stopping a node: store, ingest writer, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::ingest::{Ingest, IngestConfig};
use crate::metrics::Metrics;
use crate::store::Store;

/// A running node.
pub struct Daemon {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// The store, for in-process callers.
    pub store: Store,
    /// The ingest pipeline, for in-process callers.
    pub ingest: Ingest,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    writer: std::thread::JoinHandle<()>,
    data: DataDir,
}

impl Daemon {
    /// Initializes what is missing in `data`, opens the store and serves
    /// HTTP on `config.http.listen`.
    pub async fn start(data: DataDir, config: Config) -> Result<Daemon> {
        data.init()?;
        let key = data.load_key()?;
        let admin_token = data.load_admin_token()?;
        let store = Store::open(&data.store())
            .with_context(|| format!("opening the store in {}", data.store().display()))?;
        let metrics = Arc::new(Metrics::new());
        let (ingest, writer) = Ingest::start(
            store.clone(),
            IngestConfig {
                max_group: config.ingest.max_group,
                max_pending_per_signer: config.ingest.max_pending_per_signer,
                ..IngestConfig::default()
            },
            metrics.clone(),
        );
        let state = AppState {
            store: store.clone(),
            ingest: ingest.clone(),
            metrics,
            admin_token: admin_token.into(),
            limits: Arc::new(config.http.clone()),
            node_key: key.public_key(),
            started: Instant::now(),
        };
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding the HTTP API to {}", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        std::fs::write(data.http_addr(), format!("{http_addr}\n"))
            .with_context(|| format!("writing {}", data.http_addr().display()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, api::app(state))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%http_addr, node = %key.public_key(), data_dir = %data.root.display(), "vouchd serving");
        Ok(Daemon {
            http_addr,
            store,
            ingest,
            stop,
            server,
            writer,
            data,
        })
    }

    /// Stops serving, lets the writer finish what it holds, flushes.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("HTTP server task")??;
        drop(self.ingest);
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .context("joining the writer")?
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        self.store.flush()?;
        let _ = std::fs::remove_file(self.data.http_addr());
        tracing::info!("vouchd stopped");
        Ok(())
    }
}
