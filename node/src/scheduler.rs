//! Background tasks of the rebuild pipeline: syncing each profile on its
//! interval into the job queue, and reaping jobs whose lease ran out.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use crate::store::jobs::{JobRecord, RetryPolicy};
use crate::sync::SyncProfile;
use crate::worker::unix_now;

/// Syncs `profile` now and every `interval_secs`, queueing what is new.
pub async fn sync_loop(store: Store, http: reqwest::Client, profile: SyncProfile) {
    let interval = Duration::from_secs(profile.interval_secs.max(10));
    let memo = crate::sync::IndexMemo::default();
    loop {
        match crate::sync::run_profile_with(&http, &profile, Some(&memo)).await {
            Ok(result) => {
                for r in &result.refused {
                    tracing::warn!(profile = %profile.name, entry = %r.entry, reason = %r.reason, "index entry refused");
                }
                let (store2, scope, jobs) = (store.clone(), result.scopes, result.jobs);
                let n = jobs.len();
                match tokio::task::spawn_blocking(move || {
                    store2.enqueue_sync(&scope, &jobs, unix_now())
                })
                .await
                {
                    Ok(Ok(new)) => tracing::info!(profile = %profile.name, jobs = n, new, "synced"),
                    Ok(Err(e)) => {
                        tracing::error!(profile = %profile.name, error = %e, "queueing jobs")
                    }
                    Err(e) => tracing::error!(error = %e, "sync task"),
                }
            }
            Err(e) => {
                tracing::error!(profile = %profile.name, error = %e, "sync profile is invalid")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Every `every`, requeues jobs whose lease ran out — unless the attempt
/// had finished (its verdicts, by `signer`, dated from the attempt's start,
/// are stored), in which case the job is completed: no job runs twice to a
/// second verdict.
pub async fn reap_loop(
    store: Store,
    signer: vouch_attest::PublicKey,
    retry: RetryPolicy,
    every: Duration,
) {
    loop {
        let s = store.clone();
        let r = tokio::task::spawn_blocking(move || {
            let finished = |rec: &JobRecord| finished_outcome(&s, &signer, rec);
            s.reap_jobs(unix_now(), &retry, &finished)
        })
        .await;
        match r {
            Ok(Ok(keys)) if !keys.is_empty() => {
                tracing::warn!(jobs = ?keys, "requeued jobs whose worker went silent")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "reaping jobs"),
            _ => {}
        }
        tokio::time::sleep(every).await;
    }
}

/// The outcome of an attempt whose verdicts are all stored, if they are.
pub fn finished_outcome(
    store: &Store,
    signer: &vouch_attest::PublicKey,
    rec: &JobRecord,
) -> Option<String> {
    let mut summary = "GOOD";
    for s in &rec.job.subjects {
        // Our own latest verdict about the artifact: one seek in the
        // (artifact, signer) index, which no other signer can crowd out.
        let envelope = store.latest(&s.sha256, signer).ok()??;
        let mine = vouch_attest::open(&envelope).ok()?;
        if mine.verdict().issued_at < rec.started_at {
            return None;
        }
        match mine.verdict().outcome {
            vouch_attest::Outcome::Good => {}
            vouch_attest::Outcome::Bad { .. } => {
                if summary == "GOOD" {
                    summary = "BAD";
                }
            }
            vouch_attest::Outcome::Fail { .. } => summary = "FAIL",
        }
    }
    Some(summary.to_string())
}

/// Starts the rebuild pipeline's tasks: workers, reaper, one sync loop per
/// profile.
pub fn spawn(
    ctx: crate::worker::WorkerContext,
    profiles: Vec<SyncProfile>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..ctx.config.workers {
        tasks.push(tokio::spawn(crate::worker::run_worker(
            ctx.clone(),
            format!("local-{i}"),
        )));
    }
    tasks.push(tokio::spawn(reap_loop(
        ctx.store.clone(),
        ctx.signer.public(),
        ctx.config.retry,
        Duration::from_secs((ctx.config.lease_secs / 4).clamp(1, 30)),
    )));
    for p in profiles {
        tasks.push(tokio::spawn(sync_loop(
            ctx.store.clone(),
            ctx.http.clone(),
            p,
        )));
    }
    let _ = Arc::strong_count(&ctx.signer);
    tasks
}
