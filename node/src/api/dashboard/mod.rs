//! The dashboard: server-rendered HTML at `/`, readable on a phone and
//! usable without JavaScript. Everything shown comes from memory or from a
//! few index reads, so the first byte does not wait on the size of the
//! store. Strings from verdicts and repositories are untrusted: `maud`
//! escapes them, and pages carry a Content-Security-Policy that allows no
//! script at all.
//!
//! Pages: `/` (repositories, queue, last builds, network), `/search?q=`
//! (by package name prefix or sha256), `/artifact/{sha256}` (every
//! signer's latest verdict about one artifact, disagreements and fork
//! proofs marked), `/evidence/{sha256}` (a log or diffoscope as plain
//! text), `/style.css`.

mod artifact;
mod overview;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use vouch_attest::{Digest, OutcomeKind, PublicKey};

use crate::api::state::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/search", get(overview::search))
        .route("/artifact/{sha}", get(artifact::artifact))
        .route("/evidence/{sha}", get(artifact::evidence))
        .route("/style.css", get(style))
}

const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// An HTML page with the dashboard's frame.
fn page(title: &str, node: &PublicKey, query: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vouch" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.brand href="/" { "vouch" }
                    span.node title=(node.to_text()) { "node " code { (short_key(node)) } }
                    form action="/search" method="get" role="search" {
                        input type="search" name="q" value=(query)
                            placeholder="package name or sha256" aria-label="package name or sha256";
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
                footer {
                    "Signed verdicts: " a href="/api/vouch/v1/status" { "vouch API" }
                    " · rebuilderd clients: " a href="/api/v1/dashboard" { "API v1" }
                }
            }
        }
    };
    let mut r = markup.into_string().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'",
        ),
    );
    r
}

/// `ed25519:AbCd…wxyz`: enough to tell keys apart on a screen.
fn short_key(k: &PublicKey) -> String {
    let t = k.to_text();
    let body = t.strip_prefix("ed25519:").unwrap_or(&t);
    let head: String = body.chars().take(8).collect();
    format!("{head}…")
}

fn short_sha(d: &Digest) -> String {
    d.to_string().chars().take(12).collect()
}

/// A UTC time for people.
fn when(unix: u64) -> String {
    let t = crate::api::rebuilderd::model::naive(unix);
    format!("{} UTC", t.replacen('T', " ", 1))
}

/// An outcome as a badge.
fn badge(o: Option<OutcomeKind>) -> Markup {
    match o {
        Some(OutcomeKind::Good) => html! { span.badge.good { "GOOD" } },
        Some(OutcomeKind::Bad) => html! { span.badge.bad { "BAD" } },
        Some(OutcomeKind::Fail) => html! { span.badge.fail { "FAIL" } },
        None => html! { span.badge.unknown { "not yet" } },
    }
}
