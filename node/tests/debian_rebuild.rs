//! A real Debian rebuild of `hello` 2.10-3 (bookworm) on this machine: the
//! source package is fetched from deb.debian.org and checked against the
//! real `Sources` stanza, the build dependencies are installed with apt,
//! and dpkg-buildpackage runs. Needs root and the Debian archive; without
//! root it reports itself skipped.

mod common;

use std::sync::Arc;

use vouch_attest::*;
use vouch_node::admission::{Admission, AdmissionConfig};
use vouch_node::backend::BackendConfig;
use vouch_node::ingest::{Ingest, IngestConfig};
use vouch_node::metrics::Metrics;
use vouch_node::store::Store;
use vouch_node::sync::debian;
use vouch_node::sync::profile::Filter;
use vouch_node::worker::{BackendFor, RebuildConfig, Signer, WorkerContext, process};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../testdata/debian/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_is_rebuilt_for_real() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        // CI runs as root and must skip nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must not skip: the Debian rebuild installs build dependencies with apt and needs root"
        );
        eprintln!(
            "SKIPPED: the Debian rebuild installs build dependencies with apt and needs root"
        );
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = debian::parse(
        &fixture("Packages_hello.stanza"),
        &fixture("Sources_hello.stanza"),
        "bookworm",
        "main",
        "amd64",
        "https://deb.debian.org/debian",
        &Filter::all(),
    );
    let job = r.jobs[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (ingest, _w) = Ingest::start(
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
            common::key("debian-rebuilder"),
            store.clone(),
            ingest,
        )),
        config: Arc::new(RebuildConfig {
            workers: 1,
            timeout_secs: 1800,
            backends: vec![BackendFor {
                distribution: "debian".into(),
                backend: BackendConfig::Debian,
            }],
            ..RebuildConfig::default()
        }),
        http: reqwest::Client::new(),
        metrics,
        work_root: dir.path().to_path_buf(),
    };
    store
        .enqueue_sync(&[], std::slice::from_ref(&job), 0)
        .unwrap();
    let record = store.lease_job("local-0", 0, 3600).unwrap().unwrap();
    let summary = process(&ctx, "local-0", record).await.unwrap();
    let sha = job.subjects[0].sha256;
    let envelopes = store.latest_by_artifact(&sha, None, 10).unwrap().0;
    let v = open(&envelopes[0]).unwrap().verdict().clone();
    let log = store.blob(&v.evidence.build_log.unwrap()).unwrap().unwrap();
    let log = String::from_utf8_lossy(&zstd::stream::decode_all(&log[..]).unwrap()).into_owned();
    eprintln!(
        "hello 2.10-3 rebuilt on this machine: {summary} ({})",
        v.outcome
    );
    assert!(
        summary == "GOOD" || summary == "BAD",
        "the build itself must work: {summary}\n{log}"
    );
    assert!(
        log.contains("dpkg-buildpackage") && log.contains("SOURCE_DATE_EPOCH="),
        "{log}"
    );
    assert!(
        log.contains("build environment"),
        "the environment used is recorded"
    );
    assert_eq!(v.inputs.backend, "debian");
    assert!(v.inputs.backend_version.contains("no snapshot"));
    assert_eq!(
        v.inputs.buildinfo_sha256,
        Some(job.source_files[0].sha256),
        "the .dsc it was built from"
    );
    assert_eq!(v.subject.release.as_deref(), Some("bookworm"));
}
