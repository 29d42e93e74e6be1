//! The queue, workers and dashboards: `GET|POST|DELETE /api/v1/queue`,
//! `GET /api/v1/workers`, `GET /api/v1/dashboard`, `GET /api/v0/dashboard`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::model::{
    DashboardJobState, DashboardRebuildState, DashboardResponse, DashboardState, Naive,
    PkgArtifact, PkgGroup, QueueItem, QueueJobRequest, QueuedJob, ResultPage, SuccessfullyQueued,
    SuiteStats, Worker,
};
use super::packages::run;
use super::{authorize, json_body};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::store::jobs::{JobRecord, JobState, Priority};
use crate::store::{Store, StoreError};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Origin and source identity filters of the queue.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    limit: Option<String>,
    after: Option<String>,
    distribution: Option<String>,
    release: Option<String>,
    component: Option<String>,
    architecture: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

impl From<QueueQuery> for JobFilter {
    fn from(q: QueueQuery) -> JobFilter {
        JobFilter {
            distribution: q.distribution,
            release: q.release,
            component: q.component,
            architecture: q.architecture,
            name: q.name,
            version: q.version,
            status: None,
        }
    }
}

/// What a job must match (fields left out match anything).
#[derive(Debug, Default)]
struct JobFilter {
    distribution: Option<String>,
    release: Option<String>,
    component: Option<String>,
    architecture: Option<String>,
    name: Option<String>,
    version: Option<String>,
    /// The last outcome (`UNKWN`: none yet).
    status: Option<String>,
}

impl JobFilter {
    fn matches(&self, r: &JobRecord) -> bool {
        let eq = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f.is_empty() || f == v);
        let j = &r.job;
        eq(&self.distribution, &j.distribution)
            && eq(&self.release, j.release.as_deref().unwrap_or("-"))
            && eq(&self.component, &j.component)
            && eq(&self.architecture, &j.architecture)
            && eq(&self.name, &j.source)
            && eq(&self.version, &j.version)
            && eq(&self.status, r.last.as_deref().unwrap_or("UNKWN"))
    }

    /// Whether it matches every job.
    fn is_empty(&self) -> bool {
        [
            &self.distribution,
            &self.release,
            &self.component,
            &self.architecture,
            &self.name,
            &self.version,
            &self.status,
        ]
        .iter()
        .all(|f| f.as_deref().is_none_or(str::is_empty))
    }

    /// The job-key prefix every match starts with.
    fn prefix(&self) -> String {
        match self.distribution.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!("{d}/"),
            None => String::new(),
        }
    }
}

fn queued_job(id: u32, r: &JobRecord) -> QueuedJob {
    let j = &r.job;
    let queued_at = if r.queued_at > 0 {
        r.queued_at
    } else {
        r.next_at
    };
    QueuedJob {
        id,
        name: j.source.clone(),
        version: j.version.clone(),
        distribution: j.distribution.clone(),
        release: j.release.clone(),
        architecture: j.architecture.clone(),
        backend: j.distribution.clone(),
        url: input_url(r),
        next_retry: (r.state == JobState::Queued && r.next_at > queued_at)
            .then_some(Naive(r.next_at)),
        priority: r.priority as i32,
        queued_at: Naive(queued_at),
        started_at: matches!(r.state, JobState::Running | JobState::Recording)
            .then_some(Naive(r.started_at)),
    }
}

fn input_url(r: &JobRecord) -> String {
    let j = &r.job;
    j.buildinfo_url
        .clone()
        .or_else(|| {
            j.source_dir
                .as_ref()
                .map(|d| format!("{}/{}", j.mirror.trim_end_matches('/'), d))
        })
        .unwrap_or_else(|| j.mirror.clone())
}

/// Running jobs with their ids, in id order.
fn running(store: &Store) -> Result<Vec<(u32, JobRecord)>, StoreError> {
    let mut out = Vec::new();
    for r in store.running_jobs()? {
        if let Some(ids) = store.job_ids(&r.job.key())? {
            out.push((ids.id, r));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

/// `GET /api/v1/queue`: running and queued jobs in job-id order, paged by
/// `after` (a job id).
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    let (limit, after) = super::parse_page(q.limit.as_deref(), q.after.as_deref())?;
    let after = after.unwrap_or(0);
    let filter = JobFilter::from(q);
    let store = s.store.clone();
    let body = run(move || {
        let running = running(&store)?;
        let mut records = Vec::new();
        let mut cursor = after;
        let mut held = running.iter().filter(|(id, _)| *id > after).peekable();
        loop {
            let mut batch = store.queued_jobs(cursor, limit)?;
            let exhausted = batch.len() < limit;
            let upto = match batch.last() {
                Some((last, _)) if !exhausted => *last,
                _ => u32::MAX,
            };
            while let Some((id, r)) = held.next_if(|(id, _)| *id <= upto) {
                batch.push((*id, r.clone()));
            }
            batch.sort_by_key(|(id, _)| *id);
            for (id, r) in &batch {
                if records.len() >= limit {
                    break;
                }
                if filter.matches(r) {
                    records.push(queued_job(*id, r));
                }
            }
            if exhausted || records.len() >= limit {
                break;
            }
            cursor = upto;
        }
        let mut total = 0u64;
        if filter.is_empty() {
            total = store.queued_total() as u64 + running.len() as u64;
        } else {
            total += running.iter().filter(|(_, r)| filter.matches(r)).count() as u64;
            let mut c = 0;
            loop {
                let page = store.queued_jobs(c, 1000)?;
                let Some((last, _)) = page.last() else { break };
                c = *last;
                total += page.iter().filter(|(_, r)| filter.matches(r)).count() as u64;
            }
        }
        Ok(ResultPage { total, records })
    })
    .await?;
    Ok(Json(body).into_response())
}

/// Keys of the jobs `filter` matches.
fn matching(store: &Store, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
    let mut out = Vec::new();
    store.scan_jobs(&filter.prefix(), |r| {
        if filter.matches(&r) {
            out.push(r);
        }
        Ok(())
    })?;
    Ok(out)
}

/// `POST /api/v1/queue` (admin): queues the jobs matching the request
/// again (those a worker holds are left alone).
pub async fn push(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let req: QueueJobRequest = json_body(&headers, &body)?;
    if req
        .status
        .as_deref()
        .is_some_and(|st| !matches!(st, "GOOD" | "BAD" | "FAIL" | "UNKWN"))
    {
        return Err(ApiError::bad_request(
            "bad_body",
            "status: expected GOOD, BAD, FAIL or UNKWN",
        ));
    }
    let priority = match req.priority {
        None => Priority::Manual,
        Some(p) if p <= 0 => Priority::Manual,
        Some(1) => Priority::New,
        Some(_) => Priority::Retry,
    };
    let filter = JobFilter {
        distribution: req.distribution,
        release: req.release,
        component: req.component,
        architecture: req.architecture,
        name: req.name,
        version: req.version,
        status: req.status,
    };
    let store = s.store.clone();
    let affected = run(move || {
        let now = unix_now();
        let mut n = 0;
        for r in matching(&store, &filter)? {
            if matches!(r.state, JobState::Running | JobState::Recording) {
                continue;
            }
            if store.requeue_job_with(&r.job.key(), now, priority)? {
                n += 1;
            }
        }
        Ok(n)
    })
    .await?;
    Ok(Json(SuccessfullyQueued { affected }).into_response())
}

/// `DELETE /api/v1/queue` (admin): takes the queued jobs matching the
/// query off the queue.
pub async fn drop(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let filter = JobFilter::from(q);
    let store = s.store.clone();
    let affected = run(move || {
        let mut n = 0;
        for r in matching(&store, &filter)? {
            if r.state == JobState::Queued && store.drop_job(&r.job.key())? {
                n += 1;
            }
        }
        Ok(n)
    })
    .await?;
    Ok(Json(SuccessfullyQueued { affected }).into_response())
}

/// `GET /api/v1/workers`: the workers this node has seen, with what they
/// build now.
pub async fn workers(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let seen = s
        .rebuild
        .as_ref()
        .map(|c| c.activity.snapshot().1)
        .unwrap_or_default();
    let records = run(move || {
        let mut building: BTreeMap<String, String> = BTreeMap::new();
        for r in store.running_jobs()? {
            if let Some(w) = &r.worker {
                building.insert(
                    w.clone(),
                    format!("building {} {}", r.job.source, r.job.version),
                );
            }
        }
        let now = unix_now();
        let mut records = Vec::new();
        for (i, w) in seen.iter().enumerate() {
            let name = w["worker"].as_str().unwrap_or_default().to_string();
            let last = w["last_seen"].as_u64().unwrap_or(0);
            records.push(Worker {
                id: i as u32 + 1,
                address: if name.starts_with("remote-") || name.len() > 40 {
                    "remote".into()
                } else {
                    "local".into()
                },
                status: building.get(&name).cloned(),
                last_ping: Naive(last),
                is_online: now.saturating_sub(last) < 120 || building.contains_key(&name),
                name,
            });
        }
        Ok(ResultPage {
            total: records.len() as u64,
            records,
        })
    })
    .await?;
    Ok(Json(records).into_response())
}

/// The origin filter of the dashboards.
#[derive(Debug, Default, Deserialize)]
pub struct OriginQuery {
    distribution: Option<String>,
    release: Option<String>,
    component: Option<String>,
    architecture: Option<String>,
}

fn origin_matches(q: &OriginQuery, origin: &str) -> bool {
    let mut p = origin.splitn(4, '/');
    let eq = |f: &Option<String>, v: Option<&str>| {
        f.as_deref().is_none_or(|f| f.is_empty() || Some(f) == v)
    };
    eq(&q.distribution, p.next())
        && eq(&q.release, p.next())
        && eq(&q.component, p.next())
        && eq(&q.architecture, p.next())
}

/// `GET /api/v1/dashboard`: packages still published, by status (this
/// node's verdicts), and the jobs.
pub async fn dashboard(
    State(s): State<AppState>,
    Query(q): Query<OriginQuery>,
) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let body = run(move || {
        let mut c = crate::store::standing::StatusCounts::default();
        for (origin, counts) in store.origin_counts() {
            if origin_matches(&q, &origin) {
                c.add(&counts.published);
            }
        }
        let queue = store.queue_counts()?;
        let ready = store.queue_ready(unix_now())?;
        Ok(DashboardState {
            rebuilds: DashboardRebuildState {
                good: c.good,
                bad: c.bad,
                fail: c.fail,
                unknown: c.unknown,
            },
            jobs: DashboardJobState {
                running: queue.running,
                available: ready,
                pending: queue.queued.saturating_sub(ready),
            },
        })
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/v0/dashboard`.
pub async fn dashboard_v0(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let body = run(move || {
        let mut suites: BTreeMap<String, SuiteStats> = BTreeMap::new();
        for (origin, counts) in store.origin_counts() {
            let component = origin.split('/').nth(2).unwrap_or_default().to_string();
            let e = suites.entry(component).or_default();
            e.good += counts.published.good;
            e.bad += counts.published.bad;
            e.unknown += counts.published.unknown + counts.published.fail;
        }
        let mut active = Vec::new();
        for (id, r) in running(&store)? {
            let rows = store.job_packages(&r.job.key())?;
            let queued_at = if r.queued_at > 0 {
                r.queued_at
            } else {
                r.next_at
            };
            active.push(QueueItem {
                id,
                version: r.job.version.clone(),
                pkgbase: PkgGroup {
                    name: r.job.source.clone(),
                    version: r.job.version.clone(),
                    distro: r.job.distribution.clone(),
                    suite: r.job.component.clone(),
                    architecture: r.job.architecture.clone(),
                    input_url: Some(input_url(&r)),
                    artifacts: rows
                        .into_iter()
                        .map(|p| PkgArtifact {
                            name: p.name,
                            version: p.version,
                            url: p.url,
                        })
                        .collect(),
                },
                queued_at: Naive(queued_at),
                worker_id: None,
                started_at: Some(Naive(r.started_at)),
                last_ping: None,
            });
        }
        Ok(DashboardResponse {
            suites,
            active_builds: active,
            queue_length: store.queue_counts()?.queued,
            now: Naive(unix_now()),
        })
    })
    .await?;
    Ok(Json(body).into_response())
}
