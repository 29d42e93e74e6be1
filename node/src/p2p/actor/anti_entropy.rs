//! Anti-entropy: asking peers for their heads, fetching what is missing
//! page by page, serving our own log and fork proofs.

use super::*;

impl Actor {
    /// A round: our head digest is computed off the swarm's task, then
    /// [`Actor::digest_ready`] asks the peers.
    pub(super) fn anti_entropy(&mut self) {
        self.round += 1;
        let store = self.store.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || store.head_digest()).await {
                Ok(Ok(d)) => {
                    let _ = done.send(Done::OwnDigest(d)).await;
                }
                Ok(Err(e)) => tracing::error!(error = %e, "computing the head digest"),
                Err(e) => tracing::error!(error = %e, "computing the head digest"),
            }
        });
    }

    /// Our head digest is ready: each peer picked this round is sent its
    /// root; a peer that agrees answers in one message.
    pub(super) fn digest_ready(&mut self, d: crate::store::digest::HeadDigest) {
        let root = ByteBuf::from(d.root.as_bytes().to_vec());
        self.own_buckets = d.buckets;
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in pick(&peers, self.config.sync_peers) {
            let id = self
                .swarm
                .behaviour_mut()
                .sync
                .send_request(&peer, SyncRequest::Digest { root: root.clone() });
            self.requests.insert(id, Purpose::Digest);
            if self.round % 4 == 1 {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncRequest::Forks { after: None });
                self.requests.insert(id, Purpose::Forks);
            }
        }
    }

    pub(super) fn sync_event(&mut self, e: request_response::Event<SyncRequest, SyncResponse>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.serve(peer, request, channel);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(purpose) = self.requests.remove(&request_id) {
                        self.response(peer, purpose, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                match self.requests.remove(&request_id) {
                    Some(Purpose::Range { signer }) => {
                        if let Some(f) = self.fetching.get_mut(&signer) {
                            f.outstanding = false;
                            if f.queued == 0 {
                                self.fetching.remove(&signer);
                            }
                        }
                    }
                    // An older peer cannot decode the digest request.
                    Some(Purpose::Digest)
                        if matches!(
                            error,
                            request_response::OutboundFailure::UnsupportedProtocols
                        ) || matches!(error, request_response::OutboundFailure::Io(_)) =>
                    {
                        self.ask_all_heads(peer);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Takes one request from `peer`'s budget (sync and blob requests
    /// share it); false, counted, when it is spent.
    pub(super) fn take_request(&mut self, peer: PeerId) -> bool {
        let per_minute = f64::from(self.config.peer_requests_per_minute.max(1));
        let msg_rate = f64::from(self.config.peer_messages_per_second.max(1));
        let limits = self.limits.entry(peer).or_insert_with(|| PeerLimits {
            requests: Bucket::full(per_minute),
            messages: Bucket::full(msg_rate),
        });
        if limits.requests.take(per_minute, per_minute / 60.0) {
            return true;
        }
        self.metrics
            .dropped
            .get_or_create(&ReasonLabel {
                reason: "p2p.peer_requests",
            })
            .inc();
        false
    }

    pub(super) fn serve(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        if !self.take_request(peer) {
            let _ = self.swarm.behaviour_mut().sync.send_response(
                channel,
                SyncResponse::error("rate_limited", "too many sync requests"),
            );
            return;
        }
        let store = self.store.clone();
        let known = self.known_signers.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let response =
                tokio::task::spawn_blocking(move || sync::serve(&store, &known, request))
                    .await
                    .unwrap_or_else(|e| SyncResponse::error("internal", e.to_string()));
            let _ = done.send(Done::Respond(channel, response)).await;
        });
    }

    pub(super) fn response(&mut self, peer: PeerId, purpose: Purpose, response: SyncResponse) {
        match (purpose, response) {
            (Purpose::Digest, SyncResponse::Same) => {}
            (Purpose::Digest, SyncResponse::Buckets(theirs)) => {
                let differ = sync::differing_buckets(&self.own_buckets, &theirs);
                if !differ.is_empty() {
                    let id = self.swarm.behaviour_mut().sync.send_request(
                        &peer,
                        SyncRequest::HeadsIn {
                            buckets: ByteBuf::from(differ),
                        },
                    );
                    self.requests.insert(id, Purpose::Heads);
                }
            }
            (Purpose::Digest, SyncResponse::Error { code, message }) => {
                // A peer that does not know digests: all its heads.
                tracing::debug!(%peer, %code, %message, "digest refused; asking for every head");
                self.ask_all_heads(peer);
            }
            (Purpose::Heads, SyncResponse::Heads(heads)) => {
                // Comparing up to 100,000 heads with ours is store work:
                // it runs off the swarm's task and reports back.
                let store = self.store.clone();
                let known = self.known_signers.clone();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let wants =
                        tokio::task::spawn_blocking(move || compare_heads(&store, &known, heads))
                            .await
                            .unwrap_or_default();
                    let _ = done.send(Done::Heads { peer, wants }).await;
                });
            }
            (Purpose::Range { signer }, SyncResponse::Range(page)) => {
                let envelopes: Vec<Vec<u8>> = page
                    .into_iter()
                    .map(ByteBuf::into_vec)
                    .take(sync::MAX_PAGE as usize)
                    .collect();
                let last_seq = envelopes
                    .last()
                    .and_then(|e| {
                        Envelope::decode(e)
                            .and_then(|e| e.unverified_verdict())
                            .ok()
                    })
                    .map(|v| v.seq);
                let Some(f) = self.fetching.get_mut(&signer) else {
                    // A targeted gap fetch: hand it to ingest and forget it.
                    if !envelopes.is_empty() {
                        let _ = self.pages.try_send((signer, peer, envelopes));
                    }
                    return;
                };
                f.outstanding = false;
                match last_seq {
                    Some(seq) if seq >= f.next_from => {
                        f.next_from = seq + 1;
                        f.queued += 1;
                        if self.pages.try_send((signer, peer, envelopes)).is_err() {
                            f.queued -= 1;
                            tracing::warn!("sync ingest queue full; the next round resumes");
                            self.fetching.remove(&signer);
                            return;
                        }
                        if f.next_from <= f.target && f.queued < PIPELINE {
                            let (p, from) = (f.peer, f.next_from);
                            self.request_range(p, signer, from);
                        }
                    }
                    _ => {
                        // Nothing new: done (or the peer does not have it).
                        if f.queued == 0 {
                            self.fetching.remove(&signer);
                        } else {
                            f.next_from = f.target + 1;
                        }
                    }
                }
            }
            (Purpose::Forks, SyncResponse::Forks { proofs, next }) => {
                let proofs: Vec<Vec<u8>> = proofs
                    .into_iter()
                    .take(sync::MAX_FORKS)
                    .map(ByteBuf::into_vec)
                    .collect();
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || {
                    for p in proofs {
                        store_fork(&store, &p, &peer);
                    }
                });
                if let Some(after) = next {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_request(&peer, SyncRequest::Forks { after: Some(after) });
                    self.requests.insert(id, Purpose::Forks);
                }
            }
            (purpose, SyncResponse::Error { code, message }) => {
                tracing::debug!(%peer, %code, %message, "sync request refused");
                if let Purpose::Range { signer } = purpose {
                    self.fetching.remove(&signer);
                }
            }
            (purpose, _) => {
                tracing::debug!(%peer, "sync answer of the wrong kind");
                if let Purpose::Range { signer } = purpose {
                    self.fetching.remove(&signer);
                }
            }
        }
    }

    /// Compares logs with `peer` now: by digest when this node's bucket
    /// digests are known from a round (a digest older than the last write
    /// is safe: a bucket the peer shares with our older state holds
    /// nothing we lack), else by every head.
    pub(super) fn compare_with(&mut self, peer: PeerId) {
        if self.own_buckets.len() != crate::store::digest::BUCKETS {
            self.ask_all_heads(peer);
            return;
        }
        let root = crate::store::digest::root_of(&self.own_buckets);
        let root = ByteBuf::from(root.as_bytes().to_vec());
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::Digest { root });
        self.requests.insert(id, Purpose::Digest);
    }

    fn ask_all_heads(&mut self, peer: PeerId) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::Heads);
        self.requests.insert(id, Purpose::Heads);
    }

    /// Starts the catch-ups a peer's heads call for, known signers first,
    /// while fewer than [`MAX_FETCHES`] run; the rest wait for a later
    /// round (the heads are asked again).
    pub(super) fn start_fetches(&mut self, peer: PeerId, wants: Vec<Want>) {
        for w in wants {
            if self.fetching.len() >= MAX_FETCHES {
                self.metrics
                    .dropped
                    .get_or_create(&ReasonLabel {
                        reason: "p2p.fetches_deferred",
                    })
                    .inc();
                break;
            }
            if self.fetching.contains_key(&w.signer) {
                continue;
            }
            self.fetching.insert(
                w.signer,
                Fetch {
                    peer,
                    target: w.target,
                    next_from: w.from,
                    outstanding: false,
                    queued: 0,
                },
            );
            self.request_range(peer, w.signer, w.from);
        }
    }

    pub(super) fn request_range(&mut self, peer: PeerId, signer: PublicKey, from: u64) {
        let request = SyncRequest::Range {
            signer: ByteBuf::from(signer.as_bytes().to_vec()),
            from,
            limit: sync::MAX_PAGE,
        };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.requests.insert(id, Purpose::Range { signer });
        if let Some(f) = self.fetching.get_mut(&signer) {
            f.outstanding = true;
        }
    }

    pub(super) fn fetch_gap(&mut self, peer: PeerId, gap: Gap) {
        if self.fetching.contains_key(&gap.signer) || gap.upto <= gap.from {
            return;
        }
        self.fetching.insert(
            gap.signer,
            Fetch {
                peer,
                target: gap.upto.saturating_sub(1),
                next_from: gap.from,
                outstanding: false,
                queued: 0,
            },
        );
        self.request_range(peer, gap.signer, gap.from);
    }
}

/// Ingests sync pages one after another, in arrival order, so that a
/// signer's entries reach the writer in seq order.
pub(super) async fn page_ingester(
    ingest: Ingest,
    mut pages: mpsc::Receiver<(PublicKey, PeerId, Vec<Vec<u8>>)>,
    done: mpsc::Sender<Done>,
) {
    while let Some((signer, peer, envelopes)) = pages.recv().await {
        let invalid = match ingest.submit("sync", envelopes).await {
            Ok(reports) => reports
                .iter()
                .filter(|r| {
                    r.status == Status::Rejected
                        && r.code.as_deref().is_some_and(|c| {
                            c.starts_with("decode.") || c.starts_with("signature.")
                        })
                })
                .count(),
            Err(e) => {
                tracing::warn!(error = %e, "sync ingest failed");
                0
            }
        };
        if done
            .send(Done::Page {
                signer,
                invalid,
                peer,
            })
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Catch-ups running at once, at most.
const MAX_FETCHES: usize = 256;

/// One signer's log to fetch from a peer: from `from` to `target`.
pub(super) struct Want {
    signer: PublicKey,
    from: u64,
    target: u64,
}

/// What a peer's heads call for: the signers whose log we lack, or have
/// shorter, or whose head differs at the same seq (a fork to prove). Known
/// signers come first, so that a peer announcing a flood of fresh signers
/// cannot delay theirs.
fn compare_heads(
    store: &Store,
    known: &HashSet<PublicKey>,
    heads: Vec<sync::HeadEntry>,
) -> Vec<Want> {
    let mut wants = Vec::new();
    for h in heads.into_iter().take(sync::MAX_HEADS) {
        let (Some(signer), Some(id)) = (sync::parse_signer(&h.signer), sync::parse_digest(&h.id))
        else {
            continue;
        };
        let ours = match store.head(&signer) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "reading a head");
                continue;
            }
        };
        let from = match &ours {
            None => 0,
            Some(o) if o.seq < h.seq => o.seq + 1,
            // Same seq, another entry: fetch it to prove the fork.
            Some(o) if o.seq == h.seq && o.id != id => o.seq,
            Some(_) => continue,
        };
        wants.push(Want {
            signer,
            from,
            target: h.seq,
        });
    }
    wants.sort_by_key(|w| !known.contains(&w.signer));
    wants
}
