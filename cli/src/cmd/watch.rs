//! `vouch watch`: the gossip, live, as JSON lines.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use serde_json::{Value, json};
use vouch_attest::{Envelope, ForkProof, OutcomeKind, PublicKey, Verdict};

use crate::args::WatchArgs;
use crate::client;
use crate::exit::Exit;
use crate::peer::{Heard, LightPeer};

/// How long to wait for the first peer.
const FIRST_PEER: Duration = Duration::from_secs(30);

/// What a line must match: within a key any value, across keys all.
#[derive(Debug, Default)]
struct Filter {
    signers: Vec<PublicKey>,
    distributions: Vec<String>,
    outcomes: Vec<OutcomeKind>,
}

impl Filter {
    fn parse(specs: &[String]) -> Result<Filter> {
        let mut f = Filter::default();
        for s in specs {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--filter `{s}`: expected KEY=VALUE (signer=, distribution=, outcome=)");
            };
            match k.trim() {
                "signer" => f.signers.push(
                    v.trim()
                        .parse()
                        .with_context(|| format!("--filter signer=`{v}`"))?,
                ),
                "distribution" => f.distributions.push(v.trim().to_string()),
                "outcome" => f
                    .outcomes
                    .push(match v.trim().to_ascii_uppercase().as_str() {
                        "GOOD" => OutcomeKind::Good,
                        "BAD" => OutcomeKind::Bad,
                        "FAIL" => OutcomeKind::Fail,
                        other => bail!("--filter outcome=`{other}`: expected GOOD, BAD or FAIL"),
                    }),
                other => bail!("--filter `{other}`: expected signer, distribution or outcome"),
            }
        }
        Ok(f)
    }

    /// Whether a verdict matches.
    fn verdict(&self, v: &Verdict) -> bool {
        (self.signers.is_empty() || self.signers.contains(&v.signer))
            && (self.distributions.is_empty()
                || self.distributions.contains(&v.subject.distribution))
            && (self.outcomes.is_empty() || self.outcomes.contains(&v.outcome.result()))
    }
}

/// The multiaddrs to join through: `--bootstrap`, and the listen addresses
/// of each `--node`.
fn bootstrap(a: &WatchArgs) -> Result<Vec<Multiaddr>> {
    let mut out = Vec::new();
    for b in &a.bootstrap {
        out.push(
            b.parse::<Multiaddr>()
                .with_context(|| format!("--bootstrap `{b}` is not a multiaddr"))?,
        );
    }
    {
        for node in &a.node {
            let v = client::node_json(node, "/api/vouch/v1/peers", Duration::from_secs(10))
                .with_context(|| format!("asking {node} for its addresses"))?;
            let peer = v["peer_id"]
                .as_str()
                .with_context(|| format!("{node} has p2p off"))?
                .parse()
                .with_context(|| format!("{node}: bad peer id"))?;
            for l in v["listen"].as_array().into_iter().flatten() {
                let Some(Ok(mut addr)) = l.as_str().map(str::parse::<Multiaddr>) else {
                    continue;
                };
                if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
                    addr.push(Protocol::P2p(peer));
                }
                out.push(addr);
            }
        }
    }
    if out.is_empty() {
        bail!("give --bootstrap MULTIADDR or --node URL: a peer to join through");
    }
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// One line for a message, or why it is dropped. `None`: valid, filtered
/// out.
fn line(heard: &Heard, filter: &Filter) -> Result<Option<Value>, String> {
    match heard {
        Heard::Verdict { from, data } => {
            let v = Envelope::decode(data)
                .map_err(|e| format!("verdict from {from}: {e}"))?
                .verify()
                .map_err(|e| format!("verdict from {from}: {e}"))?;
            if !filter.verdict(v.verdict()) {
                return Ok(None);
            }
            Ok(Some(json!({
                "type": "verdict",
                "from": from.to_string(),
                "id": v.id().to_hex(),
                "verdict": v.verdict(),
                "envelope": b64(v.envelope()),
            })))
        }
        Heard::Fork { from, data } => {
            let proof =
                ForkProof::decode(data).map_err(|e| format!("fork proof from {from}: {e}"))?;
            let checked = proof
                .check()
                .map_err(|e| format!("fork proof from {from}: {e}"))?;
            if !checked.verdicts.iter().any(|v| filter.verdict(v.verdict())) {
                return Ok(None);
            }
            Ok(Some(json!({
                "type": "fork",
                "from": from.to_string(),
                "id": checked.id.to_hex(),
                "signer": checked.signer.to_text(),
                "seq": checked.seq(),
                "verdicts": [checked.verdicts[0].id().to_hex(), checked.verdicts[1].id().to_hex()],
                "proof": b64(data),
            })))
        }
        Heard::Connected(_) => Ok(None),
    }
}

/// Runs the command.
pub(crate) fn run(a: &WatchArgs) -> Result<Exit> {
    let filter = Filter::parse(&a.filter)?;
    let peers = bootstrap(a)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut peer = LightPeer::start(&peers, a.max_peers.max(1))?;
        let started = Instant::now();
        let deadline = a.timeout.map(|s| started + Duration::from_secs(s));
        let mut connected = false;
        let mut printed = 0u64;
        let mut dropped = 0u64;
        let stdout = std::io::stdout();
        loop {
            let limit = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            let limit = if connected {
                limit
            } else {
                limit.min(FIRST_PEER.saturating_sub(started.elapsed()))
            };
            let heard = match tokio::time::timeout(limit, peer.next()).await {
                Ok(h) => h,
                Err(_) if !connected => {
                    eprintln!(
                        "vouch watch: no peer answered within {} s",
                        FIRST_PEER.as_secs()
                    );
                    return Ok(Exit::Unreachable);
                }
                Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => break,
                Err(_) => continue,
            };
            if let Heard::Connected(p) = &heard {
                connected = true;
                eprintln!("vouch watch: connected to {p}");
                continue;
            }
            match line(&heard, &filter) {
                Ok(Some(l)) => {
                    let mut out = stdout.lock();
                    serde_json::to_writer(&mut out, &l)?;
                    writeln!(out)?;
                    out.flush()?;
                    printed += 1;
                    if a.count.is_some_and(|n| printed >= n) {
                        break;
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    dropped += 1;
                    eprintln!("vouch watch: dropped: {why}");
                }
            }
        }
        eprintln!("vouch watch: {printed} printed, {dropped} dropped as invalid");
        Ok(Exit::Ok)
    })
}
