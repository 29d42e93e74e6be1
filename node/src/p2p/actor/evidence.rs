//! `/vouch/blobs/1` in the actor: serving blobs this node holds, and
//! finding blobs it lacks at its peers, one peer after the other, each
//! answer checked off the swarm's task before it is believed.

use libp2p::request_response::{InboundRequestId, OutboundRequestId};
use vouch_attest::Digest;

use super::*;
use crate::p2p::blobs::{self, BlobRequest, BlobResponse};

/// A blob being looked for.
pub(super) struct BlobHunt {
    /// Peers still to ask, in order.
    pub(super) candidates: Vec<PeerId>,
    /// Who waits for it.
    pub(super) waiters: Vec<tokio::sync::oneshot::Sender<Option<Vec<u8>>>>,
    /// Peers asked so far.
    pub(super) tried: usize,
}

impl Actor {
    /// A handle asks for a blob.
    pub(super) fn hunt_blob(
        &mut self,
        sha256: Digest,
        prefer: Option<PeerId>,
        reply: tokio::sync::oneshot::Sender<Option<Vec<u8>>>,
    ) {
        if let Some(h) = self.blob_hunts.get_mut(&sha256) {
            h.waiters.push(reply);
            return;
        }
        let mut peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        // The preferred peer first, then the others in a fixed order.
        peers.sort();
        if let Some(p) = prefer
            && let Some(i) = peers.iter().position(|q| *q == p)
        {
            peers.remove(i);
            peers.insert(0, p);
        }
        peers.truncate(blobs::MAX_TRIES);
        peers.reverse(); // popped from the back
        self.blob_hunts.insert(
            sha256,
            BlobHunt {
                candidates: peers,
                waiters: vec![reply],
                tried: 0,
            },
        );
        self.ask_next(sha256);
    }

    /// Asks the next candidate for `sha256`, or gives up.
    fn ask_next(&mut self, sha256: Digest) {
        let Some(h) = self.blob_hunts.get_mut(&sha256) else {
            return;
        };
        match h.candidates.pop() {
            Some(peer) => {
                h.tried += 1;
                let id = self.swarm.behaviour_mut().blobs.send_request(
                    &peer,
                    BlobRequest {
                        sha256: ByteBuf::from(sha256.as_bytes().to_vec()),
                    },
                );
                self.blob_requests.insert(id, sha256);
            }
            None => self.finish_hunt(sha256, None),
        }
    }

    fn finish_hunt(&mut self, sha256: Digest, content: Option<Vec<u8>>) {
        if let Some(h) = self.blob_hunts.remove(&sha256) {
            tracing::debug!(%sha256, found = content.is_some(), peers = h.tried, "blob hunt over");
            for w in h.waiters {
                let _ = w.send(content.clone());
            }
        }
    }

    /// A checked answer came back from its task.
    pub(super) fn blob_checked(
        &mut self,
        sha256: Digest,
        peer: PeerId,
        r: Result<Vec<u8>, String>,
    ) {
        match r {
            Ok(content) => self.finish_hunt(sha256, Some(content)),
            Err(why) => {
                tracing::info!(%peer, %sha256, %why, "a peer sent a blob that does not check");
                self.metrics
                    .dropped
                    .get_or_create(&ReasonLabel {
                        reason: "p2p.invalid_blob",
                    })
                    .inc();
                self.ask_next(sha256);
            }
        }
    }

    pub(super) fn blobs_event(&mut self, e: request_response::Event<BlobRequest, BlobResponse>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.serve_blob(peer, request_id, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.blob_response(peer, request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "blob request failed");
                if let Some(sha) = self.blob_requests.remove(&request_id) {
                    self.ask_next(sha);
                }
            }
            // An answer is done with once sent, or once it failed.
            request_response::Event::ResponseSent { request_id, .. }
            | request_response::Event::InboundFailure { request_id, .. } => {
                self.blob_serving.remove(&request_id);
            }
        }
    }

    fn blob_response(&mut self, peer: PeerId, id: OutboundRequestId, response: BlobResponse) {
        let Some(sha256) = self.blob_requests.remove(&id) else {
            return;
        };
        match response {
            BlobResponse::Found { zstd } => {
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let checked = tokio::task::spawn_blocking(move || {
                        blobs::check(&sha256, &zstd).map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    let _ = done.send(Done::BlobChecked(sha256, peer, checked)).await;
                });
            }
            BlobResponse::Missing | BlobResponse::Refused { .. } => self.ask_next(sha256),
        }
    }

    fn serve_blob(
        &mut self,
        peer: PeerId,
        id: InboundRequestId,
        request: BlobRequest,
        channel: ResponseChannel<BlobResponse>,
    ) {
        if !self.take_request(peer) {
            let _ = self.swarm.behaviour_mut().blobs.send_response(
                channel,
                BlobResponse::Refused {
                    reason: "rate_limited".into(),
                },
            );
            return;
        }
        let Some(sha) = <[u8; 32]>::try_from(request.sha256.as_slice())
            .ok()
            .map(Digest)
        else {
            let _ = self.swarm.behaviour_mut().blobs.send_response(
                channel,
                BlobResponse::Refused {
                    reason: "a sha256 is 32 bytes".into(),
                },
            );
            return;
        };
        // Each answer holds a blob in memory: a few at once in total,
        // whoever asks and however many identities they use.
        if self.blob_serving.len() >= blobs::MAX_SERVING {
            self.metrics
                .dropped
                .get_or_create(&ReasonLabel {
                    reason: "p2p.blob_busy",
                })
                .inc();
            let _ = self.swarm.behaviour_mut().blobs.send_response(
                channel,
                BlobResponse::Refused {
                    reason: "busy".into(),
                },
            );
            return;
        }
        self.blob_serving.insert(id);
        let store = self.store.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let response = tokio::task::spawn_blocking(move || match store.blob(&sha) {
                Ok(Some(z)) => BlobResponse::Found {
                    zstd: ByteBuf::from(z),
                },
                Ok(None) => BlobResponse::Missing,
                Err(e) => {
                    tracing::error!(error = %e, "reading a blob");
                    BlobResponse::Missing
                }
            })
            .await
            .unwrap_or(BlobResponse::Missing);
            let _ = done.send(Done::BlobRespond(channel, response)).await;
        });
    }
}
