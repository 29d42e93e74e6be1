//! `/` and `/search`.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use vouch_attest::Digest;

use super::{badge, page, short_sha, when};
use crate::api::error::ApiError;
use crate::api::rebuilderd::packages::run;
use crate::api::state::AppState;
use crate::store::packages::PackageRow;
use crate::store::standing::OriginCounts;

/// Most rows a search shows.
const SEARCH_LIMIT: usize = 200;

struct Overview {
    origins: Vec<(String, OriginCounts)>,
    queued: u64,
    running: Vec<crate::store::jobs::JobRecord>,
    verdicts: u64,
    signers: u64,
    forks: u64,
}

/// `GET /`.
pub async fn overview(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let o = run(move || {
        let counts = store.counts()?;
        Ok(Overview {
            origins: store.origin_counts().into_iter().collect(),
            queued: store.queue_counts()?.queued,
            running: store.running_jobs()?,
            verdicts: counts.verdicts,
            signers: counts.signers,
            forks: counts.forks,
        })
    })
    .await?;
    let builds = s
        .rebuild
        .as_ref()
        .map(|c| c.activity.snapshot().0)
        .unwrap_or_default();
    let peers = match &s.network {
        Some(n) => Some(n.peers().await.len()),
        None => None,
    };
    let body = html! {
        section #repositories {
            h2 { "Repositories" }
            @if o.origins.is_empty() {
                p.empty { "This node follows no repository yet (see " code { "[[sync]]" } " in its config)." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Repository" } th.num { "Packages" } th.num { "GOOD" } th.num { "BAD" }
                        th.num { "FAIL" } th.num { "Not yet" } th { "Reproduced" }
                    } }
                    tbody {
                        @for (origin, c) in &o.origins {
                            @let p = c.published;
                            @let total = p.total();
                            @let share = if total == 0 { 0.0 } else { p.good as f64 * 100.0 / total as f64 };
                            tr {
                                td { a href={ "/search?q=&origin=" (origin) } { (origin_label(origin)) } }
                                td.num { (total) }
                                td.num.good { (p.good) } td.num.bad { (p.bad) }
                                td.num.fail { (p.fail) } td.num { (p.unknown) }
                                td.share {
                                    meter min="0" max="100" value=(format!("{share:.1}")) { (format!("{share:.1}%")) }
                                    " " span { (format!("{share:.1}%")) }
                                }
                            }
                        }
                    }
                } }
                p.note { "Packages in each repository's last sync, by this node's own verdicts." }
            }
        }
        section #queue {
            h2 { "Queue" }
            p { strong { (o.queued) } " queued · " strong { (o.running.len()) } " building" }
            @if !o.running.is_empty() {
                div.scroll { table {
                    thead { tr { th { "Source" } th { "Version" } th { "Repository" } th { "Worker" } th { "Since" } } }
                    tbody {
                        @for r in &o.running {
                            tr {
                                td { a href={ "/search?q=" (r.job.source) } { (r.job.source) } }
                                td { (r.job.version) }
                                td { (r.job.distribution) " " (r.job.component) " " (r.job.architecture) }
                                td { code { (r.worker.as_deref().unwrap_or("-")) } }
                                td { (when(r.started_at)) }
                            }
                        }
                    }
                } }
            }
        }
        section #builds {
            h2 { "Last builds" }
            @if builds.is_empty() {
                p.empty { "No build finished since this node started." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Job" } th { "Outcome" } th { "Backend" } th { "Finished" } } }
                    tbody {
                        @for b in builds.iter().take(20) {
                            @let job = b["job"].as_str().unwrap_or_default();
                            tr {
                                td { a href={ "/search?q=" (job_part(job, 4)) } { (job_part(job, 4)) } " " (job_part(job, 5))
                                    " " span.detail { (job_part(job, 0)) " " (job_part(job, 2)) } }
                                td { (outcome_badge(b["outcome"].as_str().unwrap_or_default())) }
                                td { (b["backend"].as_str().unwrap_or_default()) }
                                td { (when(b["finished_at"].as_u64().unwrap_or(0))) }
                            }
                        }
                    }
                } }
            }
        }
        section #network {
            h2 { "Network" }
            ul.facts {
                li { strong { (o.verdicts) } " verdicts stored" }
                li { strong { (o.signers) } " signers" }
                li { strong { (o.forks) } " fork proofs" }
                @if let Some(p) = peers { li { strong { (p) } " peers connected" } }
            }
        }
    };
    Ok(page("Dashboard", &s.node_key, "", body))
}

fn origin_label(origin: &str) -> String {
    origin
        .split('/')
        .filter(|p| *p != "-")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Field `n` of a job key (`dist/release/component/arch/source/version`).
fn job_part(key: &str, n: usize) -> &str {
    key.split('/').nth(n).unwrap_or_default()
}

fn outcome_badge(s: &str) -> Markup {
    use vouch_attest::OutcomeKind;
    let o = match s.split_whitespace().next() {
        Some("GOOD") => Some(OutcomeKind::Good),
        Some("BAD") => Some(OutcomeKind::Bad),
        Some("FAIL") => Some(OutcomeKind::Fail),
        _ => None,
    };
    let rest = s
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r.trim());
    html! { (badge(o)) @if !rest.is_empty() { " " span.detail { (rest) } } }
}

/// The query of `/search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// Only packages of this origin (`distribution/release/component/arch`).
    #[serde(default)]
    origin: String,
}

/// `GET /search?q=`: a sha256 goes to its artifact; anything else is a
/// package name prefix.
pub async fn search(
    State(s): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let text = q.q.trim().to_string();
    if text.len() == 64
        && let Ok(sha) = text.parse::<Digest>()
    {
        return Ok((
            axum::http::StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/artifact/{sha}"))],
        )
            .into_response());
    }
    if text.len() > 256 {
        return Err(ApiError::bad_request(
            "bad_query",
            "a search is a package name (prefix) or a sha256",
        ));
    }
    let store = s.store.clone();
    let prefix = text.clone();
    let origin = q.origin.clone();
    let (rows, more) = run(move || {
        let mut rows: Vec<PackageRow> = store.search_packages(&prefix, SEARCH_LIMIT * 4)?;
        if !origin.is_empty() {
            rows.retain(|r| r.origin() == origin);
        }
        let more = rows.len() > SEARCH_LIMIT;
        rows.truncate(SEARCH_LIMIT);
        let rows = rows
            .into_iter()
            .map(|r| {
                let own = store.own_verdict(&r.sha256).map(|o| o.outcome);
                let seen = store.job_published(r.job_id);
                (r, own, seen)
            })
            .collect::<Vec<_>>();
        Ok((rows, more))
    })
    .await?;
    let title = if text.is_empty() {
        "Packages".to_string()
    } else {
        format!("Packages named {text}…")
    };
    let body = html! {
        h1 { (title) }
        @if rows.is_empty() {
            p.empty { "No package of the repositories this node follows is named so. A sha256 (64 hex digits) finds any artifact a signer spoke about." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Package" } th { "Version" } th { "Repository" } th { "This node" } th { "sha256" } } }
                tbody {
                    @for (r, own, seen) in &rows {
                        tr.unpublished[!seen] {
                            td { a href={ "/artifact/" (r.sha256) } { (r.name) } }
                            td { (r.version) @if !seen { " " span.detail { "(no longer published)" } } }
                            td { (origin_label(&r.origin())) }
                            td { (badge(*own)) }
                            td { code { (short_sha(&r.sha256)) } }
                        }
                    }
                }
            } }
            @if more { p.note { "Only the first " (SEARCH_LIMIT) " are shown; type more of the name." } }
        }
    };
    Ok(page(&title, &s.node_key, &text, body))
}
