//! The answer to every verdict query, written a part at a time: the
//! envelopes are found first (as pointers, from the indexes), then read and
//! written [`PART`] at a time, so an answer of 200,000 verdicts never sits
//! whole in memory.
//!
//! JSON: `{"verdicts": [{"envelope", "id", "verdict"}, …], "forks": […],
//! "truncated": …}`, the forks being those kept against the signers of the
//! verdicts written. With `Accept: application/cbor`: a CBOR array of the
//! envelopes (its length is known from the pointers before any is read).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vouch_attest::{Digest, Envelope, PublicKey, Verdict, envelope_array_head};

use crate::api::error::ApiError;
use crate::api::state::{AppState, wants_cbor};
use crate::api::verdicts::fork_item;
use crate::store::segments::Ptr;
use crate::store::{Store, StoreError};

/// Envelopes read and written at a time.
pub const PART: usize = 256;

/// What a query found: where the envelopes are, and whether the answer was
/// cut.
pub struct Found {
    pub ptrs: Vec<Ptr>,
    pub truncated: bool,
}

/// Why a part of an answer could not be written.
#[derive(Debug, thiserror::Error)]
enum PartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the task reading a part failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<PartError> for ApiError {
    fn from(e: PartError) -> ApiError {
        match e {
            PartError::Store(e) => e.into(),
            PartError::Json(e) => ApiError::internal(e),
            PartError::Task(e) => ApiError::internal(e),
        }
    }
}

/// Answers with what `found` points at. The first part is read before the
/// status is sent, so a store that cannot read it answers 500; a later
/// failure cuts the answer short (its JSON then does not parse), and is
/// logged.
pub async fn respond(
    s: &AppState,
    headers: &HeaderMap,
    found: Found,
) -> Result<Response, ApiError> {
    let cbor = wants_cbor(headers);
    let truncated = found.truncated;
    let answer = Answer::new(s.store.clone(), found, cbor);
    let (answer, first) = next_part(answer).await?;
    // One part waits in the channel while the next is read: a slow reader
    // holds a few parts of memory and no thread.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        let (mut answer, mut part) = (answer, first);
        while let Some(p) = part {
            // The reader went away: stop.
            if tx.send(Ok(p)).await.is_err() {
                return;
            }
            match next_part(answer).await {
                Ok((a, p)) => (answer, part) = (a, p),
                Err(e) => {
                    tracing::error!(error = %e, "writing a verdict answer");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|part| (part, rx))
    });
    let kind = if cbor {
        "application/cbor"
    } else {
        "application/json"
    };
    let mut r = (
        [(header::CONTENT_TYPE, kind)],
        axum::body::Body::from_stream(stream),
    )
        .into_response();
    if truncated && cbor {
        r.headers_mut().insert(
            "x-vouch-truncated",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
}

/// Reads `answer`'s next part on the blocking pool.
async fn next_part(mut answer: Answer) -> Result<(Answer, Option<Vec<u8>>), PartError> {
    let (answer, part) = tokio::task::spawn_blocking(move || {
        let part = answer.next_part();
        (answer, part)
    })
    .await?;
    Ok((answer, part?))
}

/// An answer being written.
struct Answer {
    store: Store,
    found: Found,
    cbor: bool,
    /// Envelopes written so far.
    at: usize,
    /// The signers of the verdicts written, for their fork proofs.
    signers: BTreeMap<[u8; 32], PublicKey>,
    done: bool,
}

impl Answer {
    fn new(store: Store, found: Found, cbor: bool) -> Answer {
        Answer {
            store,
            found,
            cbor,
            at: 0,
            signers: BTreeMap::new(),
            done: false,
        }
    }

    /// The next bytes of the answer; `None` once it is all written.
    fn next_part(&mut self) -> Result<Option<Vec<u8>>, PartError> {
        if self.done {
            return Ok(None);
        }
        let ptrs = &self.found.ptrs;
        let end = (self.at + PART).min(ptrs.len());
        let envelopes = self.store.read_many(&ptrs[self.at..end])?;
        let mut out = Vec::with_capacity(envelopes.len() * 1800 + 64);
        if self.at == 0 {
            if self.cbor {
                out.extend(envelope_array_head(ptrs.len()));
            } else {
                out.extend_from_slice(b"{\"verdicts\":[");
            }
        }
        for (i, e) in envelopes.iter().enumerate() {
            if self.cbor {
                out.extend_from_slice(e);
                continue;
            }
            if self.at + i > 0 {
                out.push(b',');
            }
            let (id, verdict) = match Envelope::decode(e) {
                Ok(env) => (Some(env.id()), env.unverified_verdict().ok()),
                Err(_) => (None, None),
            };
            if let Some(v) = &verdict {
                self.signers.insert(*v.signer.as_bytes(), v.signer);
            }
            write_item(&mut out, e, id, verdict.as_ref())?;
        }
        self.at = end;
        if end == ptrs.len() {
            self.done = true;
            if !self.cbor {
                self.write_tail(&mut out)?;
            }
        }
        Ok(Some(out))
    }

    /// `],"forks":[…],"truncated":…}`.
    fn write_tail(&self, out: &mut Vec<u8>) -> Result<(), PartError> {
        let mut forks = Vec::new();
        for signer in self.signers.values() {
            if let Some((p, _)) = self.store.fork_for(signer)? {
                forks.push(fork_item(&p));
            }
        }
        out.extend_from_slice(b"],\"forks\":");
        serde_json::to_writer(&mut *out, &forks)?;
        out.extend_from_slice(format!(",\"truncated\":{}}}", self.found.truncated).as_bytes());
        Ok(())
    }
}

/// One stored envelope as JSON: the envelope in base64, its id, the
/// decoded verdict.
fn write_item(
    out: &mut Vec<u8>,
    envelope: &[u8],
    id: Option<Digest>,
    verdict: Option<&Verdict>,
) -> Result<(), serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Item<'a> {
        envelope: String,
        id: Option<String>,
        verdict: Option<&'a Verdict>,
    }
    let item = Item {
        envelope: STANDARD.encode(envelope),
        id: id.map(|d| d.to_hex()),
        verdict,
    };
    serde_json::to_writer(out, &item)
}
