//! The node's side of the rebuild tests: sync a repository, rebuild every
//! job with one backend, and hand back each job with its verdict and build
//! log. Shared by the Debian and Arch Linux rebuild tests and benches.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vouch_attest::{Verdict, open};
use vouch_node::admission::{Admission, AdmissionConfig};
use vouch_node::backend::BackendConfig;
use vouch_node::ingest::{Ingest, IngestConfig};
use vouch_node::metrics::Metrics;
use vouch_node::store::Store;
use vouch_node::sync::{Job, SyncProfile};
use vouch_node::worker::{BackendFor, RebuildConfig, Signer, WorkerContext, process};

use crate::fixtures;

/// Whether every tool is on PATH; otherwise says what is missing and how to
/// install it (an error under CI, which installs them).
pub fn have_tools(tools: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must not skip: missing {missing:?}"
    );
    eprintln!("SKIPPED: needs {missing:?} ({install})");
    false
}

/// A job, its verdict and the build log.
pub type Rebuilt = (Job, Verdict, String);

/// Syncs `profile`, queues its jobs (those of source `only`, when given)
/// and rebuilds each with `backend` in `work`.
pub async fn rebuild_all(
    profile: &SyncProfile,
    backend: BackendConfig,
    work: &Path,
    only: Option<&str>,
    timeout_secs: u64,
) -> Vec<Rebuilt> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let synced = vouch_node::sync::run_profile(&reqwest::Client::new(), profile)
        .await
        .unwrap();
    assert!(synced.refused.is_empty(), "{:?}", synced.refused);
    let store = Store::temporary().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (ingest, writer) = Ingest::start(
        store.clone(),
        IngestConfig::default(),
        metrics.clone(),
        Arc::new(Admission::new(
            AdmissionConfig::default(),
            Default::default(),
        )),
        None,
    );
    let ctx = WorkerContext {
        activity: Default::default(),
        store: store.clone(),
        signer: Arc::new(Signer::new(
            fixtures::key("rebuilder"),
            store.clone(),
            ingest,
        )),
        config: Arc::new(RebuildConfig {
            workers: 1,
            timeout_secs,
            backends: vec![BackendFor {
                distribution: profile.distribution.as_str().into(),
                backend,
            }],
            ..RebuildConfig::default()
        }),
        http: reqwest::Client::new(),
        metrics,
        work_root: work.to_path_buf(),
    };
    std::fs::create_dir_all(work).unwrap();
    let jobs: Vec<Job> = synced
        .jobs
        .into_iter()
        .filter(|j| only.is_none_or(|o| j.source == o))
        .collect();
    store.enqueue_sync(&[], &jobs, 0).unwrap();
    let mut out = Vec::new();
    while let Some(record) = store.lease_job("local-0", 0, 3600).unwrap() {
        let job = record.job.clone();
        process(&ctx, "local-0", record).await.unwrap();
        let sha = job.subjects[0].sha256;
        let envelopes = store.latest_by_artifact(&sha, None, 10).unwrap().0;
        let v = open(&envelopes[0]).unwrap().verdict().clone();
        let log = store.blob(&v.evidence.build_log.unwrap()).unwrap().unwrap();
        let log =
            String::from_utf8_lossy(&zstd::stream::decode_all(&log[..]).unwrap()).into_owned();
        out.push((job, v, log));
    }
    // The writer holds the (temporary) store until the last sender is
    // gone; a store still held when the process exits is left in /tmp.
    drop(ctx);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !writer.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    out
}

/// What a hostile build must not touch: the node's data directory with its
/// key, and a port listening on the host.
pub struct Guarded {
    /// The data directory.
    pub data: std::path::PathBuf,
    /// `DATA/node.key`.
    pub key: std::path::PathBuf,
    key_before: Vec<u8>,
    /// The listening port (127.0.0.1).
    pub port: u16,
    _listener: std::net::TcpListener,
}

impl Guarded {
    /// Makes `dir/data/node.key` and a listening port.
    pub fn new(dir: &Path) -> Guarded {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let key = data.join("node.key");
        vouch_attest::write_secret_key(&key, &fixtures::key("the node")).expect("node key");
        let key_before = std::fs::read(&key).expect("node key");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("its address").port();
        Guarded {
            data,
            key,
            key_before,
            port,
            _listener: listener,
        }
    }

    /// Panics if the key changed.
    pub fn assert_key_unchanged(&self) {
        assert_eq!(
            std::fs::read(&self.key).expect("node key"),
            self.key_before,
            "a build changed the node's key"
        );
    }
}
