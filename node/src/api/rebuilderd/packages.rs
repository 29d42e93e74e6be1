//! Packages: `GET /api/v1/packages/binary[/{id}]` (keyset pages) and
//! `GET /api/v0/pkgs/list` (the whole table).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vouch_attest::OutcomeKind;

use super::model::{BinaryPackage, Naive, PkgRelease, ResultPage};
use super::{View, parse_id, parse_status, shown};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::store::packages::{Order, PackageRow};
use crate::store::{Store, StoreError};

/// Most rows on one page.
pub const MAX_LIMIT: usize = 10_000;

/// Runs `f` (store reads) on the blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// The query of `GET /api/v1/packages/binary`: rebuilderd's `Page`,
/// `OriginFilter`, `BinaryIdentityFilter` and `FreshnessFilter`, plus
/// `status` and `signer`.
#[derive(Debug, Default, Deserialize)]
pub struct BinaryQuery {
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
    sort: Option<String>,
    direction: Option<String>,
    distribution: Option<String>,
    release: Option<String>,
    component: Option<String>,
    architecture: Option<String>,
    name: Option<String>,
    version: Option<String>,
    source_name: Option<String>,
    seen_only: Option<String>,
    status: Option<String>,
    signer: Option<String>,
}

/// What a row must match.
struct Filter {
    distribution: Option<String>,
    release: Option<String>,
    component: Option<String>,
    architecture: Option<String>,
    name: Option<String>,
    version: Option<String>,
    source_name: Option<String>,
    seen_only: bool,
    status: Option<Option<OutcomeKind>>,
    view: View,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl Filter {
    /// Whether the row's origin and identity match (not its status).
    fn matches_row(&self, r: &PackageRow) -> bool {
        let eq = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f == v);
        eq(&self.distribution, &r.distribution)
            && self
                .release
                .as_deref()
                .is_none_or(|f| r.release.as_deref() == Some(f))
            && eq(&self.component, &r.component)
            && eq(&self.architecture, &r.architecture)
            && eq(&self.name, &r.name)
            && eq(&self.version, &r.version)
            && eq(&self.source_name, &r.source)
    }

    /// Whether an origin key (`distribution/release/component/arch`)
    /// matches.
    fn matches_origin(&self, origin: &str) -> bool {
        let mut parts = origin.splitn(4, '/');
        let (Some(d), Some(rel), Some(c), Some(a)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let eq = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f == v);
        eq(&self.distribution, d)
            && eq(&self.release, rel)
            && eq(&self.component, c)
            && eq(&self.architecture, a)
    }

    /// Whether only origin, freshness and status filters apply, so that
    /// the in-memory counts answer the total.
    fn counted(&self) -> bool {
        self.name.is_none()
            && self.version.is_none()
            && self.source_name.is_none()
            && matches!(self.view, View::Own)
    }
}

/// One row with what the view says about it.
struct Row {
    row: PackageRow,
    shown: Option<super::Shown>,
    seen: bool,
}

fn evaluate(store: &Store, f: &Filter, row: PackageRow) -> Result<Option<Row>, StoreError> {
    if !f.matches_row(&row) {
        return Ok(None);
    }
    let seen = store.job_published(row.job_id);
    if f.seen_only && !seen {
        return Ok(None);
    }
    let shown = shown(store, f.view, &row.sha256)?;
    if let Some(want) = f.status
        && shown.map(|s| s.outcome) != want
    {
        return Ok(None);
    }
    Ok(Some(Row { row, shown, seen }))
}

/// The artifact status rebuilderd's clients know: FAIL means the artifact
/// was not built, which they show as no status.
fn artifact_status(o: OutcomeKind) -> Option<&'static str> {
    match o {
        OutcomeKind::Good => Some("GOOD"),
        OutcomeKind::Bad => Some("BAD"),
        OutcomeKind::Fail => None,
    }
}

/// Turns a row into the v1 shape (giving its verdict a number).
fn to_binary(
    store: &Store,
    r: Row,
    synced: &mut HashMap<String, u64>,
) -> Result<BinaryPackage, StoreError> {
    let number = match &r.shown {
        Some(s) => Some(store.verdict_number(&s.verdict)?),
        None => None,
    };
    let origin = r.row.origin();
    let last_seen = match synced.get(&origin) {
        Some(t) => *t,
        None => {
            let t = store.last_synced(&origin)?;
            synced.insert(origin, t);
            t
        }
    };
    Ok(BinaryPackage {
        id: r.row.id,
        name: r.row.name,
        version: r.row.version,
        distribution: r.row.distribution,
        release: r.row.release,
        component: Some(r.row.component),
        architecture: r.row.architecture,
        url: r.row.url,
        status: r.shown.and_then(|s| artifact_status(s.outcome)),
        build_id: number,
        artifact_id: number,
        diffoscope_log_id: r.shown.filter(|s| s.has_diffoscope).and(number),
        attestation_log_id: None,
        last_seen: Naive(last_seen),
        seen_in_last_sync: r.seen,
    })
}

fn parse_filter(q: BinaryQuery, s: &AppState) -> Result<(Filter, Page), ApiError> {
    let (limit, after) = super::parse_page(q.limit.as_deref(), q.after.as_deref())?;
    if q.before.as_deref().is_some_and(|b| !b.is_empty()) {
        return Err(ApiError::bad_request(
            "bad_query",
            "paging backwards (`before`) is not supported; page with `after`",
        ));
    }
    if q.direction
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != "Ascending")
    {
        return Err(ApiError::bad_request(
            "bad_query",
            "only `Ascending` order is supported",
        ));
    }
    let order = match q.sort.as_deref() {
        None | Some("") | Some("id") => Order::Id,
        Some("name") => Order::Name,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("sort `{other}`: expected `id` or `name`"),
            ));
        }
    };
    let seen_only = match q.seen_only.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("seen_only `{other}`: expected true or false"),
            ));
        }
    };
    let filter = Filter {
        distribution: nonempty(q.distribution),
        release: nonempty(q.release),
        component: nonempty(q.component),
        architecture: nonempty(q.architecture),
        name: nonempty(q.name),
        version: nonempty(q.version),
        source_name: nonempty(q.source_name),
        seen_only,
        status: parse_status(q.status.as_deref())?,
        view: View::parse(q.signer.as_deref(), &s.node_key)?,
    };
    Ok((
        filter,
        Page {
            limit,
            after,
            order,
        },
    ))
}

struct Page {
    limit: usize,
    after: Option<u32>,
    order: Order,
}

/// How many rows match: from the in-memory counts when only origin,
/// freshness and status filter (this node's view), otherwise by walking
/// the rows the name index (or the table) holds.
fn total(store: &Store, f: &Filter) -> Result<u64, StoreError> {
    if f.counted() {
        let mut n = 0;
        for (origin, c) in store.origin_counts() {
            if !f.matches_origin(&origin) {
                continue;
            }
            let counts = if f.seen_only { c.published } else { c.all };
            n += match f.status {
                Some(s) => counts.get(s),
                None => counts.total(),
            };
        }
        return Ok(n);
    }
    let mut n = 0;
    store.walk_packages(Order::Name, f.name.as_deref(), None, |row| {
        if evaluate(store, f, row)?.is_some() {
            n += 1;
        }
        Ok(true)
    })?;
    Ok(n)
}

/// `GET /api/v1/packages/binary`.
pub async fn binary(
    State(s): State<AppState>,
    Query(q): Query<BinaryQuery>,
) -> Result<Response, ApiError> {
    let (filter, page) = parse_filter(q, &s)?;
    let store = s.store.clone();
    let body = run(move || {
        let mut records = Vec::with_capacity(page.limit.min(1000));
        let mut synced = HashMap::new();
        let mut failed = None;
        store.walk_packages(page.order, filter.name.as_deref(), page.after, |row| {
            if records.len() >= page.limit {
                return Ok(false);
            }
            if let Some(r) = evaluate(&store, &filter, row)? {
                match to_binary(&store, r, &mut synced) {
                    Ok(b) => records.push(b),
                    Err(e) => {
                        failed = Some(e);
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let total = total(&store, &filter)?;
        Ok(ResultPage { total, records })
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/v1/packages/binary/{id}`.
pub async fn binary_one(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<BinaryQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id("package id", &id)?;
    let (filter, _) = parse_filter(
        BinaryQuery {
            signer: q.signer,
            ..BinaryQuery::default()
        },
        &s,
    )?;
    let store = s.store.clone();
    let body = run(move || {
        let row = store
            .package(id)?
            .ok_or_else(|| ApiError::not_found(format!("no package {id}")))?;
        let r = evaluate(&store, &filter, row)?
            .ok_or_else(|| ApiError::not_found(format!("no package {id}")))?;
        Ok(to_binary(&store, r, &mut HashMap::new())?)
    })
    .await?;
    Ok(Json(body).into_response())
}

/// The query of `GET /api/v0/pkgs/list`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    name: Option<String>,
    status: Option<String>,
    distro: Option<String>,
    suite: Option<String>,
    architecture: Option<String>,
    signer: Option<String>,
}

/// `GET /api/v0/pkgs/list`: every package matching, in one answer.
pub async fn list_v0(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = Filter {
        distribution: nonempty(q.distro),
        release: None,
        component: nonempty(q.suite),
        architecture: nonempty(q.architecture),
        name: nonempty(q.name),
        version: None,
        source_name: None,
        seen_only: false,
        status: parse_status(q.status.as_deref())?,
        view: View::parse(q.signer.as_deref(), &s.node_key)?,
    };
    // Whole-table answers are streamed in chunks through a short channel,
    // so one costs a few chunks of memory however large the table, and a
    // few run at once in total.
    let permit = LISTINGS.acquire().await.map_err(ApiError::internal)?;
    let store = s.store.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.push(b'[');
        let mut first = true;
        let walked = store.walk_packages(Order::Id, filter.name.as_deref(), None, |row| {
            let Some(r) = evaluate(&store, &filter, row)? else {
                return Ok(true);
            };
            let number = match &r.shown {
                Some(s) => Some(store.verdict_number(&s.verdict)?),
                None => None,
            };
            let item = PkgRelease {
                name: r.row.name,
                version: r.row.version,
                status: r
                    .shown
                    .and_then(|s| artifact_status(s.outcome))
                    .unwrap_or("UNKWN"),
                distro: r.row.distribution,
                suite: r.row.component,
                architecture: r.row.architecture,
                artifact_url: r.row.url,
                build_id: number,
                built_at: r.shown.map(|s| Naive(s.issued_at)),
                has_diffoscope: r.shown.is_some_and(|s| s.has_diffoscope),
                has_attestation: false,
            };
            if !first {
                buf.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut buf, &item).map_err(|e| StoreError::Damaged {
                tree: "packages",
                detail: e.to_string(),
            })?;
            if buf.len() >= CHUNK {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                // The reader went away: stop.
                return Ok(tx.blocking_send(Ok(chunk)).is_ok());
            }
            Ok(true)
        });
        match walked {
            Ok(()) => {
                buf.push(b']');
                let _ = tx.blocking_send(Ok(buf));
            }
            Err(e) => {
                // The status is sent already: the answer is cut short, and
                // its JSON does not parse.
                tracing::error!(error = %e, "listing packages");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Bytes of JSON sent at a time by a whole-table answer.
const CHUNK: usize = 256 * 1024;

/// Whole-table answers being written at once, in total.
static LISTINGS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
