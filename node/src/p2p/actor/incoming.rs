//! Inbound gossip: rate limits per peer, batched verification and ingest,
//! fork proofs, and the validation verdicts reported back to gossipsub.

use super::*;

impl Actor {
    pub(super) fn gossip_event(&mut self, e: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = e
        else {
            return;
        };
        let rate = f64::from(self.config.peer_messages_per_second.max(1));
        let limits = self
            .limits
            .entry(propagation_source)
            .or_insert_with(|| PeerLimits {
                requests: Bucket::full(f64::from(self.config.peer_requests_per_minute.max(1))),
                messages: Bucket::full(rate),
            });
        if !limits.messages.take(rate, rate) {
            self.metrics
                .dropped
                .get_or_create(&ReasonLabel {
                    reason: "p2p.peer_messages",
                })
                .inc();
            self.validate(
                &message_id,
                &propagation_source,
                MessageAcceptance::Ignore,
                "rate_limited",
            );
            return;
        }
        if message.topic == self.forks.hash() {
            // Checking two signatures and a store transaction: off the
            // swarm's task, reported back.
            let store = self.store.clone();
            let done = self.done_tx.clone();
            tokio::spawn(async move {
                let peer = propagation_source;
                let acceptance =
                    tokio::task::spawn_blocking(move || store_fork(&store, &message.data, &peer))
                        .await
                        .unwrap_or(MessageAcceptance::Ignore);
                let _ = done
                    .send(Done::Fork(message_id, propagation_source, acceptance))
                    .await;
            });
            return;
        }
        self.batch
            .push((message_id, propagation_source, message.data));
        if self.batch.len() >= GOSSIP_BATCH {
            self.flush_gossip();
        }
    }

    pub(super) fn validate(
        &mut self,
        id: &MessageId,
        source: &PeerId,
        acceptance: MessageAcceptance,
        label: &'static str,
    ) {
        self.metrics
            .gossip
            .get_or_create(&ResultLabel {
                source: "gossip",
                result: label,
            })
            .inc();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    pub(super) fn flush_gossip(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if self.batches_in_flight >= GOSSIP_IN_FLIGHT {
            for (id, peer, _) in batch {
                self.metrics
                    .dropped
                    .get_or_create(&ReasonLabel {
                        reason: "p2p.backpressure",
                    })
                    .inc();
                self.validate(&id, &peer, MessageAcceptance::Ignore, "backpressure");
            }
            return;
        }
        self.batches_in_flight += 1;
        let ingest = self.ingest.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let (meta, envelopes): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|(id, p, d)| ((id, p), d)).unzip();
            let results = match ingest.submit("gossip", envelopes).await {
                Ok(reports) => meta
                    .into_iter()
                    .zip(reports)
                    .map(|((id, peer), r)| {
                        let gap = match (r.status, r.missing_from, r.seq, r.signer.as_deref()) {
                            (Status::Pending, Some(from), Some(seq), Some(signer)) => {
                                signer.parse().ok().map(|signer| Gap {
                                    signer,
                                    from,
                                    upto: seq,
                                })
                            }
                            _ => None,
                        };
                        let acceptance = match (r.status, r.code.as_deref()) {
                            (Status::Accepted | Status::Duplicate | Status::Pending, _) => {
                                MessageAcceptance::Accept
                            }
                            (Status::Rejected, Some(code))
                                if code.starts_with("decode.")
                                    || code.starts_with("signature.") =>
                            {
                                MessageAcceptance::Reject
                            }
                            (Status::Rejected, _) => MessageAcceptance::Ignore,
                        };
                        (id, peer, acceptance, gap)
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "gossip ingest failed");
                    meta.into_iter()
                        .map(|(id, peer)| (id, peer, MessageAcceptance::Ignore, None))
                        .collect()
                }
            };
            let _ = done.send(Done::Gossip(results)).await;
        });
    }
}

pub(super) fn acceptance_label(a: &MessageAcceptance) -> &'static str {
    match a {
        MessageAcceptance::Accept => "accepted",
        MessageAcceptance::Reject => "rejected",
        MessageAcceptance::Ignore => "ignored",
    }
}

/// Decodes, checks and stores a fork proof from `peer`: Accept when it is
/// now the proof kept for its signer, Reject when it proves nothing, Ignore
/// otherwise. Blocking: run it off the swarm's task.
pub(super) fn store_fork(store: &Store, bytes: &[u8], peer: &PeerId) -> MessageAcceptance {
    let proof = match ForkProof::decode(bytes) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "undecodable fork proof");
            return MessageAcceptance::Reject;
        }
    };
    let checked = match proof.check() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "invalid fork proof");
            return MessageAcceptance::Reject;
        }
    };
    match store.put_fork(&proof, &checked.signer) {
        // Only a proof that is now the one kept for its signer is passed
        // on: one proof per signer travels, however many are made.
        Ok(true) => MessageAcceptance::Accept,
        Ok(false) => MessageAcceptance::Ignore,
        Err(e) => {
            tracing::error!(error = %e, "storing a fork proof");
            MessageAcceptance::Ignore
        }
    }
}
