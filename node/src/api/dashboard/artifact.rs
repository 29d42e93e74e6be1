//! `/artifact/{sha256}`: what every signer this node knows says about one
//! artifact; `/evidence/{sha256}`: a build log or diffoscope as text.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use vouch_attest::{Digest, Envelope, Outcome, PublicKey, Verdict};

use super::{badge, page, short_key, short_sha, when};
use crate::api::error::ApiError;
use crate::api::rebuilderd::packages::run;
use crate::api::state::AppState;
use crate::api::verdicts::parse_sha;
use crate::store::unpack_blob;

/// Signers per page.
const SIGNERS_PER_PAGE: usize = 100;

/// `?after=SIGNER` pages through the signers.
#[derive(Debug, Deserialize)]
pub struct ArtifactQuery {
    after: Option<String>,
}

struct Said {
    verdict: Verdict,
    /// How many fork proofs against the signer this node holds (0: none).
    forked: u64,
}

/// `GET /artifact/{sha256}`.
pub async fn artifact(
    State(s): State<AppState>,
    Path(sha): Path<String>,
    Query(q): Query<ArtifactQuery>,
) -> Result<Response, ApiError> {
    let sha = parse_sha(&sha)?;
    let after: Option<PublicKey> = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(
            a.parse()
                .map_err(|e| ApiError::bad_request("bad_signer", format!("after `{a}`: {e}")))?,
        ),
        None => None,
    };
    let store = s.store.clone();
    let (rows, said, more) = run(move || {
        let rows = store.packages_with_sha(&sha)?;
        let (envelopes, more) = store.latest_by_artifact(&sha, after.as_ref(), SIGNERS_PER_PAGE)?;
        let mut said = Vec::with_capacity(envelopes.len());
        for bytes in envelopes {
            let verdict = Envelope::decode(&bytes)
                .and_then(|e| e.unverified_verdict())
                .map_err(ApiError::internal)?;
            let forked = store.fork_for(&verdict.signer)?.map_or(0, |(_, n)| n);
            said.push(Said { verdict, forked });
        }
        Ok((rows, said, more))
    })
    .await?;
    let own = s.node_key;
    // Disagreement: outcomes differ, or two BAD verdicts rebuilt different
    // bytes.
    let mut kinds: Vec<_> = said.iter().map(|v| v.verdict.outcome.result()).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let mut rebuilt: Vec<Digest> = said
        .iter()
        .filter_map(|v| match v.verdict.outcome {
            Outcome::Bad { rebuilt_sha256 } => Some(rebuilt_sha256),
            _ => None,
        })
        .collect();
    rebuilt.sort();
    rebuilt.dedup();
    let disagree = kinds.len() > 1;
    let forks = said.iter().filter(|v| v.forked > 0).count();
    let name = rows
        .first()
        .map(|r| format!("{} {}", r.name, r.version))
        .or_else(|| {
            said.first()
                .map(|v| format!("{} {}", v.verdict.subject.name, v.verdict.subject.version))
        })
        .unwrap_or_else(|| short_sha(&sha));
    let mine = said.iter().find(|v| v.verdict.signer == own);
    let body = html! {
        h1 { (name) }
        p.sha { "sha256 " code { (sha) } }
        @for r in &rows {
            p.origin {
                (r.distribution) " " (r.release.as_deref().unwrap_or("")) " " (r.component) " " (r.architecture)
                " · source " (r.source) " " (r.source_version)
                " · " a href=(r.url) rel="nofollow noreferrer" { "published file" }
                @if !s.store.job_published(r.job_id) { " · " span.detail { "no longer published" } }
            }
        }
        p.mine { "This node: " (badge(mine.map(|v| v.verdict.outcome.result()))) }
        @if disagree {
            p.alert.disagree { "Signers disagree about this artifact: "
                @for (i, k) in kinds.iter().enumerate() { @if i > 0 { ", " } (k.as_str()) } "." }
        }
        @if rebuilt.len() > 1 {
            p.alert.disagree { (rebuilt.len()) " BAD verdicts rebuilt different bytes." }
        }
        @if forks > 0 {
            p.alert.forked { (forks) " of these signers forked their log: this node holds a proof that they signed two different histories. Their verdicts are not to be trusted." }
        }
        h2 { "Verdicts" }
        @if said.is_empty() {
            p.empty { "No signer this node knows has spoken about this artifact yet." }
        } @else {
            div.scroll { table.verdicts {
                thead { tr {
                    th { "Signer" } th { "Outcome" } th { "Rebuilt sha256" } th { "Backend" }
                    th { "Signed" } th { "Evidence" }
                } }
                tbody {
                    @for v in &said {
                        @let d = &v.verdict;
                        tr.own[d.signer == own].forked[v.forked > 0] {
                            td {
                                code title=(d.signer.to_text()) { (short_key(&d.signer)) }
                                @if d.signer == own { " " span.tag { "this node" } }
                                @if v.forked > 0 { " " span.tag.forked { "forked" } }
                            }
                            td { (badge(Some(d.outcome.result())))
                                @if let Outcome::Fail { reason } = d.outcome { " " span.detail { (reason.as_str()) } } }
                            td { @match d.outcome {
                                Outcome::Bad { rebuilt_sha256 } => code title=(rebuilt_sha256) { (short_sha(&rebuilt_sha256)) },
                                _ => "",
                            } }
                            td { (d.inputs.backend) " " span.detail { (d.inputs.backend_version) } }
                            td { (when(d.issued_at)) " " span.detail { "#" (d.seq) } }
                            td {
                                @if let Some(l) = d.evidence.build_log { a href={ "/evidence/" (l) } { "log" } }
                                @if let Some(x) = d.evidence.diffoscope { " " a href={ "/evidence/" (x) } { "diffoscope" } }
                            }
                        }
                    }
                }
            } }
            @if more {
                @if let Some(last) = said.last() {
                    p { a href={ "/artifact/" (sha) "?after=" (last.verdict.signer.to_text().replace('+', "%2B")) } { "More signers →" } }
                }
            }
        }
    };
    Ok(page(&name, &s.node_key, "", body))
}

/// `GET /evidence/{sha256}`: the blob as plain text. It came from a build
/// (untrusted): never rendered as HTML.
pub async fn evidence(
    State(s): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_sha(&sha)?;
    let compressed = s
        .find_blob(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("neither this node nor its peers hold {id}")))?;
    let body = run(move || Ok(unpack_blob(&compressed)?)).await?;
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(r)
}
