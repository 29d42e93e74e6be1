//! The job queue and the worker pipeline: priorities, retries with separate
//! limits, leases and heartbeats, the reaper, and real backend runs (an
//! archlinux-repro stand-in honouring its contract, an exec recipe, a
//! timeout) producing signed verdicts with evidence.

mod common;

use common::job;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use vouch_attest::*;
use vouch_node::admission::{Admission, AdmissionConfig};
use vouch_node::backend::BackendConfig;
use vouch_node::ingest::{Ingest, IngestConfig};
use vouch_node::metrics::Metrics;
use vouch_node::store::Store;
use vouch_node::store::jobs::{JobState, Priority, RetryPolicy};
use vouch_node::sync::Job;
use vouch_node::worker::{
    Attempt, BackendFor, NotHeld, RebuildConfig, Signer, SubjectResult, WorkerContext, process,
    record_attempt,
};

#[test]
fn priorities_retries_and_backoff() {
    let store = Store::temporary().unwrap();
    let retry = RetryPolicy {
        fail_retries: 2,
        bad_retries: 1,
        backoff_secs: 100,
        max_backoff_secs: 1000,
    };
    let a = job("a", &[("a", b"a")], "file:///m");
    let b = job("b", &[("b", b"b")], "file:///m");
    assert_eq!(
        store
            .enqueue_sync(&[], &[a.clone(), b.clone()], 1000)
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .enqueue_sync(&[], &[a.clone(), b.clone()], 1000)
            .unwrap(),
        0,
        "only what is new"
    );
    // A manual requeue jumps the line.
    store.requeue_job(&b.key(), 1000).unwrap();
    let first = store.lease_job("w", 1000, 60).unwrap().unwrap();
    assert_eq!(first.job.key(), b.key());
    assert_eq!(first.priority, Priority::Manual);
    let second = store.lease_job("w", 1000, 60).unwrap().unwrap();
    assert_eq!(second.job.key(), a.key());
    assert!(store.lease_job("w", 1000, 60).unwrap().is_none());

    // FAIL: retried after back-off, up to the FAIL limit.
    let r = store
        .complete_job(&a.key(), "w", "FAIL", 1000, &retry)
        .unwrap()
        .unwrap();
    assert_eq!((r.state, r.next_at, r.fails), (JobState::Queued, 1100, 1));
    assert!(
        store.lease_job("w", 1050, 60).unwrap().is_none(),
        "backing off"
    );
    store.lease_job("w", 1100, 60).unwrap().unwrap();
    let r = store
        .complete_job(&a.key(), "w", "FAIL", 1100, &retry)
        .unwrap()
        .unwrap();
    assert_eq!((r.next_at, r.fails), (1300, 2), "doubled");
    store.lease_job("w", 1300, 60).unwrap().unwrap();
    let r = store
        .complete_job(&a.key(), "w", "FAIL", 1300, &retry)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, JobState::Done, "out of FAIL retries");

    // BAD has its own limit.
    let r = store
        .complete_job(&b.key(), "w", "BAD", 1000, &retry)
        .unwrap()
        .unwrap();
    assert_eq!((r.state, r.bads, r.fails), (JobState::Queued, 1, 0));
    store.lease_job("w", 1100, 60).unwrap().unwrap();
    let r = store
        .complete_job(&b.key(), "w", "BAD", 1100, &retry)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, JobState::Done);

    // What left the repository is remembered, not deleted.
    store
        .enqueue_sync(
            &["archlinux/-/core/x86_64/".into()],
            std::slice::from_ref(&b),
            2000,
        )
        .unwrap();
    let gone = store.job(&a.key()).unwrap().unwrap();
    assert!(!gone.published);
    assert!(store.job(&b.key()).unwrap().unwrap().published);
    store.check_tally().unwrap();
}

#[test]
fn queue_counts_are_kept_not_walked() {
    let store = Store::temporary().unwrap();
    let retry = RetryPolicy::default();
    let jobs: Vec<Job> = (0..6)
        .map(|i| job(&format!("p{i}"), &[("f", b"f")], "file:///m"))
        .collect();
    store.enqueue_sync(&[], &jobs, 0).unwrap();
    let counts = |s: &Store| {
        let c = s.queue_counts().unwrap();
        (c.queued, c.running, c.done)
    };
    assert_eq!(counts(&store), (6, 0, 0));
    for _ in 0..4 {
        store.lease_job("w", 0, 60).unwrap().unwrap();
    }
    assert_eq!(counts(&store), (2, 4, 0));
    let held: Vec<String> = store
        .running_jobs()
        .unwrap()
        .iter()
        .map(|r| r.job.key())
        .collect();
    assert_eq!(held.len(), 4);
    store.claim_job(&held[0], "w", 0, 60).unwrap().unwrap();
    store
        .complete_job(&held[0], "w", "GOOD", 0, &retry)
        .unwrap()
        .unwrap();
    store
        .complete_job(&held[1], "w", "FAIL", 0, &retry)
        .unwrap()
        .unwrap();
    // A completion by a worker that does not hold the job changes nothing.
    assert!(
        store
            .complete_job(&held[2], "other", "GOOD", 0, &retry)
            .unwrap()
            .is_none()
    );
    store.requeue_job(&held[0], 0).unwrap();
    assert_eq!(counts(&store), (4, 2, 0));
    // The reaper takes back what ran out of lease.
    store.reap_jobs(1000, &retry, &|_| None).unwrap();
    assert_eq!(counts(&store), (6, 0, 0));
    store.check_tally().unwrap();
    assert!(store.running_jobs().unwrap().is_empty());
}

#[test]
fn silent_workers_lose_their_jobs_but_finished_attempts_are_not_rerun() {
    let store = Store::temporary().unwrap();
    let retry = RetryPolicy::default();
    let a = job("a", &[("a", b"a")], "file:///m");
    let b = job("b", &[("b", b"b")], "file:///m");
    store.enqueue_sync(&[], &[a.clone(), b.clone()], 0).unwrap();
    store.lease_job("w1", 0, 10).unwrap().unwrap();
    store.lease_job("w2", 0, 10).unwrap().unwrap();
    assert!(store.heartbeat_job(&a.key(), "w1", 5, 10).unwrap());
    assert!(
        !store.heartbeat_job(&a.key(), "w2", 5, 10).unwrap(),
        "not its lease"
    );
    // At 12, w2's lease (until 10) ran out, w1's (until 15) did not. b's
    // attempt "finished" (its verdicts are stored): it completes instead.
    let requeued = store
        .reap_jobs(12, &retry, &|r| {
            (r.job.source == "b").then(|| "GOOD".to_string())
        })
        .unwrap();
    assert!(requeued.is_empty());
    assert_eq!(store.job(&b.key()).unwrap().unwrap().state, JobState::Done);
    let requeued = store.reap_jobs(16, &retry, &|_| None).unwrap();
    assert_eq!(requeued, vec![a.key()]);
    assert_eq!(
        store.lease_job("w3", 16, 10).unwrap().unwrap().job.key(),
        a.key()
    );
}

struct Env {
    _dir: tempfile::TempDir,
    mirror: String,
    ctx: WorkerContext,
    writer: std::thread::JoinHandle<()>,
}

impl Env {
    /// Drops the worker context (and with it the ingest handle), then
    /// waits for the ingest writer, so the temporary store is removed.
    fn finish(self) {
        let Env { ctx, writer, .. } = self;
        drop(ctx);
        common::join_writer(writer);
    }
}

fn env(backend: BackendConfig, diffoscope: Vec<String>, timeout: u64) -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mirror_dir = dir.path().join("mirror");
    std::fs::create_dir_all(&mirror_dir).unwrap();
    for (name, content) in [
        ("good", &b"good bytes"[..]),
        ("split", b"split bytes"),
        ("differs", b"differs bytes"),
    ] {
        std::fs::write(
            mirror_dir.join(format!("{name}-1.0-1-x86_64.pkg.tar.zst")),
            content,
        )
        .unwrap();
    }
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
    let key = common::key("rebuilder");
    let signer = Arc::new(Signer::new(key, store.clone(), ingest));
    let work_root = dir.path().join("work");
    std::fs::create_dir_all(&work_root).unwrap();
    let config = RebuildConfig {
        workers: 1,
        timeout_secs: timeout,
        diffoscope,
        backends: vec![BackendFor {
            distribution: "archlinux".into(),
            backend,
        }],
        ..RebuildConfig::default()
    };
    Env {
        mirror: format!("file://{}", mirror_dir.display()),
        ctx: WorkerContext {
            activity: Default::default(),
            store,
            signer,
            config: Arc::new(config),
            http: reqwest::Client::new(),
            metrics,
            work_root,
        },
        _dir: dir,
        writer,
    }
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn verdicts_for(store: &Store, sha: &Digest) -> Vec<Verdict> {
    store
        .latest_by_artifact(sha, None, 100)
        .unwrap()
        .0
        .iter()
        .map(|e| open(e).unwrap().verdict().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archlinux_repro_contract_compares_every_artifact_with_evidence() {
    let tools = tempfile::tempdir().unwrap();
    // A stand-in for archlinux-repro honouring its contract: `repro -o
    // OUTDIR -- PKGFILE`; it rebuilds the whole base: `good` and `split`
    // identical, `differs` not.
    let repro = script(
        tools.path(),
        "repro",
        r#"[ "$1" = "-o" ] && [ "$3" = "--" ] || { echo "usage: repro -o OUTDIR -- PKGFILE" >&2; exit 2; }
out="$2"; pkg="$4"; in=$(dirname "$pkg")
echo "rebuilding $(basename "$pkg")"
cp "$in"/good-* "$in"/split-* "$out"/
printf 'differs bytes, but not quite' > "$out"/differs-1.0-1-x86_64.pkg.tar.zst"#,
    );
    let diffoscope = script(
        tools.path(),
        "diffoscope",
        r#"echo "--- $2"; echo "+++ $3"; echo "│ build date differs"; exit 1"#,
    );
    let e = env(
        BackendConfig::ArchlinuxRepro {
            command: repro,
            version: "20260101".into(),
            // The contract, on the host; isolation is tested in
            // testnet/tests/arch.rs.
            isolation: vouch_node::backend::debian::Isolation::None,
            network: false,
            binds: vec![],
            build_user: "vouch-build".into(),
            staging: std::env::temp_dir(),
        },
        vec![diffoscope],
        60,
    );
    let j = job(
        "good",
        &[
            ("good", b"good bytes"),
            ("split", b"split bytes"),
            ("differs", b"differs bytes"),
        ],
        &e.mirror,
    );
    e.ctx
        .store
        .enqueue_sync(&[], std::slice::from_ref(&j), 0)
        .unwrap();
    let record = e.ctx.store.lease_job("local-0", 0, 60).unwrap().unwrap();
    let summary = process(&e.ctx, "local-0", record).await.unwrap();
    assert_eq!(summary, "BAD");

    let good = verdicts_for(&e.ctx.store, &Digest::of(b"good bytes"));
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].outcome, Outcome::Good);
    assert_eq!(good[0].inputs.backend, "archlinux-repro");
    assert_eq!(good[0].inputs.backend_version, "20260101");
    let log = e
        .ctx
        .store
        .blob(&good[0].evidence.build_log.unwrap())
        .unwrap()
        .unwrap();
    let log = String::from_utf8(zstd::stream::decode_all(&log[..]).unwrap()).unwrap();
    assert!(log.contains("rebuilding good-1.0-1"), "{log}");
    assert_eq!(
        verdicts_for(&e.ctx.store, &Digest::of(b"split bytes"))[0].outcome,
        Outcome::Good
    );
    let bad = &verdicts_for(&e.ctx.store, &Digest::of(b"differs bytes"))[0];
    assert_eq!(
        bad.outcome,
        Outcome::Bad {
            rebuilt_sha256: Digest::of(b"differs bytes, but not quite")
        }
    );
    let diff = e
        .ctx
        .store
        .blob(&bad.evidence.diffoscope.unwrap())
        .unwrap()
        .unwrap();
    let diff = String::from_utf8(zstd::stream::decode_all(&diff[..]).unwrap()).unwrap();
    assert!(diff.contains("build date differs"), "{diff}");
    // One signed log: seq 0, 1, 2 by the node's key.
    let head = e
        .ctx
        .store
        .head(&common::key("rebuilder").public_key())
        .unwrap()
        .unwrap();
    assert_eq!(head.seq, 2);
    assert_eq!(
        e.ctx.store.job(&j.key()).unwrap().unwrap().state,
        JobState::Queued,
        "BAD is retried"
    );
    e.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_fetch_failures_are_signed_as_fail() {
    let tools = tempfile::tempdir().unwrap();
    let slow = script(tools.path(), "slow", "sleep 30");
    let e = env(
        BackendConfig::Exec {
            command: vec![slow],
            name: "my-recipe".into(),
            version: "1".into(),
        },
        vec![],
        1,
    );
    let j = job("good", &[("good", b"good bytes")], &e.mirror);
    let missing = job("absent", &[("absent", b"not on the mirror")], &e.mirror);
    let tampered = job("good", &[("good", b"what the index claims")], &e.mirror);
    let mut tampered = tampered;
    tampered.version = "2.0-1".into();
    e.ctx
        .store
        .enqueue_sync(&[], &[j.clone(), missing.clone(), tampered.clone()], 0)
        .unwrap();
    for _ in 0..3 {
        let record = e.ctx.store.lease_job("local-0", 0, 60).unwrap().unwrap();
        assert_eq!(process(&e.ctx, "local-0", record).await.unwrap(), "FAIL");
    }
    let v = &verdicts_for(&e.ctx.store, &Digest::of(b"good bytes"))[0];
    assert_eq!(
        v.outcome,
        Outcome::Fail {
            reason: FailReason::Timeout
        }
    );
    assert_eq!(v.inputs.backend, "my-recipe");
    let v = &verdicts_for(&e.ctx.store, &Digest::of(b"not on the mirror"))[0];
    assert_eq!(
        v.outcome,
        Outcome::Fail {
            reason: FailReason::Fetch
        }
    );
    let v = &verdicts_for(&e.ctx.store, &Digest::of(b"what the index claims"))[0];
    assert_eq!(
        v.outcome,
        Outcome::Fail {
            reason: FailReason::Fetch
        },
        "the mirror's file does not match the index"
    );
    let log = e
        .ctx
        .store
        .blob(&v.evidence.build_log.unwrap())
        .unwrap()
        .unwrap();
    let log = String::from_utf8(zstd::stream::decode_all(&log[..]).unwrap()).unwrap();
    assert!(log.contains("but the index says"), "{log}");
    e.finish();
}

/// Issue 8.6: two completions of one attempt race; exactly one is recorded
/// and signed, the other is refused, and a worker that no longer holds the
/// job cannot complete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_completions_sign_exactly_one_verdict() {
    let e = env(BackendConfig::Demo, Vec::new(), 60);
    let j = job("good", &[("good", b"good bytes")], &e.mirror);
    e.ctx
        .store
        .enqueue_sync(&[], std::slice::from_ref(&j), 0)
        .unwrap();
    let rec = e.ctx.store.lease_job("w1", 0, 3600).unwrap().unwrap();
    let attempt = || Attempt {
        results: vec![SubjectResult {
            filename: j.subjects[0].filename.clone(),
            outcome: Outcome::Good,
            diffoscope: None,
        }],
        log: String::new(),
        backend: "demo".into(),
        backend_version: "1".into(),
        buildinfo_sha256: None,
    };
    let (a, b) = tokio::join!(
        record_attempt(&e.ctx, "w1", &rec.job, attempt()),
        record_attempt(&e.ctx, "w1", &rec.job, attempt()),
    );
    let refused = [&a, &b]
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.is::<NotHeld>()))
        .count();
    assert_eq!(
        (a.is_ok() as u8 + b.is_ok() as u8, refused),
        (1, 1),
        "{a:?} {b:?}"
    );
    let head = e.ctx.store.head(&e.ctx.signer.public()).unwrap().unwrap();
    assert_eq!(head.count, 1, "exactly one verdict");
    // Another worker, or the same one again, cannot complete it now.
    assert!(
        record_attempt(&e.ctx, "w2", &rec.job, attempt())
            .await
            .unwrap_err()
            .is::<NotHeld>()
    );
    assert!(!e.ctx.store.heartbeat_job(&j.key(), "w1", 10, 60).unwrap());
    assert_eq!(
        e.ctx
            .store
            .head(&e.ctx.signer.public())
            .unwrap()
            .unwrap()
            .count,
        1
    );
    e.finish();
}

/// Issue 8.6: a job whose subject cannot become a valid verdict (a version
/// over 255 bytes) ends as FAIL with the reason instead of being retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsignable_subject_ends_as_fail() {
    let e = env(BackendConfig::Demo, Vec::new(), 60);
    let mut j = job("good", &[("good", b"good bytes")], &e.mirror);
    j.subjects[0].version = "1".repeat(300);
    e.ctx
        .store
        .enqueue_sync(&[], std::slice::from_ref(&j), 0)
        .unwrap();
    let rec = e.ctx.store.lease_job("local-0", 0, 3600).unwrap().unwrap();
    let out = process(&e.ctx, "local-0", rec).await.unwrap();
    assert!(out.starts_with("FAIL (unsignable"), "{out}");
    let r = e.ctx.store.job(&j.key()).unwrap().unwrap();
    assert_eq!(r.state, JobState::Done);
    assert!(
        e.ctx
            .store
            .lease_job("local-0", 10_000, 60)
            .unwrap()
            .is_none()
    );
    e.finish();
}
