//! The debian backend refuses to compare what it cannot rebuild in the
//! recorded environment. The real rebuilds are in
//! `testnet/tests/isolation.rs` and `e2e.rs`.

use std::path::{Path, PathBuf};

use vouch_node::backend::BackendConfig;
use vouch_node::backend::debian::DebianBackend;
use vouch_node::sync::debian;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(testdata(&format!("debian/{name}"))).unwrap()
}

/// The debian backend's run of `job` in `workdir`, and its log.
async fn rebuild(
    job: &vouch_node::sync::Job,
    workdir: &Path,
) -> (vouch_node::backend::BuildRun, String) {
    let run = BackendConfig::Debian(DebianBackend::default())
        .build(
            job,
            workdir,
            std::time::Duration::from_secs(60),
            1 << 20,
            &[0; 32],
        )
        .await;
    let log = String::from_utf8_lossy(&run.log).into_owned();
    (run, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_recorded_environment_hello_fails_as_fetch_not_bad() {
    // hello 2.10-3 from the real archive, with no .buildinfo configured:
    // nothing to assemble the recorded environment from.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = debian::parse(
        &fixture("Packages_hello.stanza"),
        &fixture("Sources_hello.stanza"),
        "bookworm",
        "main",
        "amd64",
        "https://deb.debian.org/debian",
        &vouch_node::sync::profile::Filter::all(),
    );
    let job = r.jobs[0].clone();
    assert!(job.buildinfo_url.is_none());
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path();
    std::fs::create_dir_all(workdir.join("input")).unwrap();
    let (run, log) = rebuild(&job, workdir).await;
    assert_eq!(
        run.status,
        vouch_node::backend::BuildStatus::Unavailable,
        "{log}"
    );
    assert!(log.contains("no .buildinfo"), "{log}");
    // A .buildinfo that does not describe the published artifact.
    std::fs::write(
        workdir.join("input/buildinfo"),
        fixture("vouch-repro-test_1.0_amd64.buildinfo"),
    )
    .unwrap();
    let (run, log) = rebuild(&job, workdir).await;
    assert_eq!(run.status, vouch_node::backend::BuildStatus::Unavailable);
    assert!(
        log.contains("does not record hello_2.10-3_amd64.deb"),
        "{log}"
    );
}
