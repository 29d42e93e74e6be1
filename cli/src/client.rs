//! Talking to nodes: every node is asked in parallel with a timeout; every
//! answer is size-limited and verified here. A node that fails, times out or
//! serves garbage is reported and does not stop the others.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use vouch_attest::{
    CheckedFork, Digest, ForkProof, MAX_ENVELOPE, MAX_FORK_PROOF, PublicKey, VerifiedVerdict,
    split_envelopes, verify_batch,
};

/// Largest answer read from a node, in bytes.
const MAX_ANSWER: usize = 256 << 20;
/// Most envelopes taken from one answer.
const MAX_ITEMS: usize = MAX_ANSWER / 64;

/// What one node gave.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeReport {
    /// The node's base URL.
    pub url: String,
    /// Whether it answered usefully.
    pub reachable: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Envelopes that verified.
    pub verdicts: usize,
    /// Fork proofs that checked.
    pub forks: usize,
    /// What it served that failed verification, and why.
    pub invalid: Vec<Value>,
}

/// Everything collected from all nodes, verified, deduplicated.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub verdicts: Vec<VerifiedVerdict>,
    pub forks: Vec<CheckedFork>,
    pub nodes: Vec<NodeReport>,
}

/// An HTTP client for nodes.
pub(crate) fn http(timeout: Duration) -> Result<reqwest::Client> {
    // reqwest is built without a default crypto provider: use ring, the one
    // the rest of the workspace (libp2p) uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = || {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
    };
    match builder().build() {
        Ok(c) => Ok(c),
        // No system certificates (a chroot, such as the one pacman runs its
        // hooks in): plain-http nodes still work; an https node then fails
        // with a certificate error of its own.
        Err(first) => {
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder()
                .tls_backend_preconfigured(tls)
                .build()
                .map_err(|_| first)
                .context("building the HTTP client (are the system's certificates readable?)")
        }
    }
}

/// [`collect`] from a blocking caller: the policy's signers about
/// `artifacts`, from `nodes`, each given `timeout_secs`.
pub(crate) fn ask_nodes(
    policy: &vouch_attest::Policy,
    nodes: &[String],
    timeout_secs: u64,
    artifacts: &[Digest],
) -> Result<Collected> {
    let keys: Vec<PublicKey> = policy.signers().iter().map(|s| s.key).collect();
    let http = http(Duration::from_secs(timeout_secs))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(collect(&http, nodes, artifacts, &keys)))
}

/// Asks every node for the latest verdict of each of `signers` (the
/// policy's keys) about each of `artifacts`, and for the fork proofs it
/// keeps against those signers. Nothing else is asked for, so no outsider
/// can crowd the answer; a node whose answer says it was cut short is an
/// error for that node, never a partial answer.
pub(crate) async fn collect(
    client: &reqwest::Client,
    nodes: &[String],
    artifacts: &[Digest],
    signers: &[PublicKey],
) -> Collected {
    let answers = join_all(nodes.iter().map(|url| ask(client, url, artifacts, signers))).await;
    // Nodes mostly serve the same envelopes: each distinct one is verified
    // once, on every core, and credited to every node that served it. Per
    // node: the indices of what it served, and its fork proofs; or why it
    // could not be asked.
    let mut distinct: Vec<Vec<u8>> = Vec::new();
    let mut index: std::collections::HashMap<Digest, usize> = std::collections::HashMap::new();
    let served: Vec<Served> = answers
        .into_iter()
        .map(|answer| {
            let (items, forks) = answer.map_err(|e| format!("{e:#}"))?;
            let mine = items
                .into_iter()
                .map(|item| {
                    *index.entry(Digest::of(&item)).or_insert_with(|| {
                        distinct.push(item);
                        distinct.len() - 1
                    })
                })
                .collect();
            Ok((mine, forks))
        })
        .collect();
    let results = verify_parallel(&distinct);
    let mut out = Collected::default();
    let mut seen_forks = std::collections::BTreeSet::new();
    for (url, answer) in nodes.iter().zip(&served) {
        let (mine, proofs) = match answer {
            Ok(a) => a,
            Err(e) => {
                out.nodes.push(NodeReport {
                    url: url.clone(),
                    reachable: false,
                    error: Some(e.clone()),
                    verdicts: 0,
                    forks: 0,
                    invalid: Vec::new(),
                });
                continue;
            }
        };
        let mut invalid = Vec::new();
        let mut good = 0;
        for (item, &i) in mine.iter().enumerate() {
            match &results[i] {
                Ok(_) => good += 1,
                Err(e) => invalid.push(serde_json::json!({
                    "item": item,
                    "code": e.code(),
                    "error": e.to_string(),
                    "bytes": distinct[i].len().min(MAX_ENVELOPE + 1),
                })),
            }
        }
        let mut forks = 0;
        for (i, p) in proofs.iter().enumerate() {
            match ForkProof::open(p) {
                Ok(f) => {
                    forks += 1;
                    if seen_forks.insert(f.id) {
                        out.forks.push(f);
                    }
                }
                Err(e) => invalid.push(serde_json::json!({
                    "fork_proof": i,
                    "code": e.code(),
                    "error": e.to_string(),
                })),
            }
        }
        out.nodes.push(NodeReport {
            url: url.clone(),
            reachable: true,
            error: None,
            verdicts: good,
            forks,
            invalid,
        });
    }
    out.verdicts = results.into_iter().flatten().collect();
    out
}

/// What one node served: indices into the distinct envelopes, and its fork
/// proofs; or why it could not be asked.
type Served = Result<(Vec<usize>, Vec<Vec<u8>>), String>;

/// Verifies envelopes on every core (batch verification in each part).
fn verify_parallel(items: &[Vec<u8>]) -> Vec<Result<VerifiedVerdict, vouch_attest::Error>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    let per = items.len().div_ceil(threads).max(256);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    let slices: Vec<&[u8]> = part.iter().map(Vec::as_slice).collect();
                    verify_batch(&slices)
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if results.len() == items.len() {
        return results;
    }
    let slices: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    verify_batch(&slices)
}

/// Envelopes and fork proofs a node served, unverified.
type Answer = (Vec<Vec<u8>>, Vec<Vec<u8>>);

async fn ask(
    client: &reqwest::Client,
    url: &str,
    artifacts: &[Digest],
    signers: &[PublicKey],
) -> Result<Answer> {
    let base = url.trim_end_matches('/');
    let keys: Vec<String> = signers.iter().map(|k| hex::encode(k.as_bytes())).collect();
    // A node answers at most 10,000 artifacts and 200,000 verdicts per
    // lookup by default: a large batch goes in chunks, all at once.
    let chunk = (100_000 / signers.len().max(1)).clamp(1, 1000);
    let lookups = join_all(artifacts.chunks(chunk).map(|part| {
        let hexes: Vec<String> = part.iter().map(Digest::to_hex).collect();
        read_body(
            client
                .post(format!("{base}/api/vouch/v1/verdicts/lookup"))
                .header("accept", "application/cbor")
                .json(&serde_json::json!({ "sha256": hexes, "signers": keys })),
        )
    }))
    .await;
    let mut envelopes = Vec::new();
    for body in lookups {
        let body = body?;
        let items = split_envelopes(&body, MAX_ITEMS)
            .context("the node's answer is not a CBOR array of envelopes")?;
        envelopes.extend(items.into_iter().map(<[u8]>::to_vec));
    }
    let body = read_body(
        client
            .get(format!("{base}/api/vouch/v1/forks"))
            .query(&[("signers", keys.join(","))])
            .header("accept", "application/cbor"),
    )
    .await?;
    let items = split_envelopes(&body, MAX_ANSWER / MAX_FORK_PROOF + 1024)
        .context("the node's fork proofs are not a CBOR array")?;
    Ok((envelopes, items.into_iter().map(<[u8]>::to_vec).collect()))
}

/// Sends a request and reads at most [`MAX_ANSWER`] bytes of a 200 answer.
/// GETs `path` of one node as JSON, from a blocking caller.
pub(crate) fn node_json(node: &str, path: &str, timeout: Duration) -> Result<serde_json::Value> {
    let http = http(timeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let req = http.get(format!("{}{path}", node.trim_end_matches('/')));
    let body = runtime.block_on(read_body(req))?;
    serde_json::from_slice(&body).context("the node's answer is not JSON")
}

/// [`node_json`] for a command that shows one node's answer: `Err(exit)`
/// when the node could not be reached (said on stderr) or when `as_json`
/// printed the answer as it is.
pub(crate) fn node_answer(
    node: &str,
    path: &str,
    timeout: Duration,
    as_json: bool,
) -> Result<std::result::Result<serde_json::Value, crate::exit::Exit>> {
    let v = match node_json(node, path, timeout) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vouch: {node}: {e:#}");
            return Ok(Err(crate::exit::Exit::Unreachable));
        }
    };
    if as_json {
        crate::output::json(&v)?;
        return Ok(Err(crate::exit::Exit::Ok));
    }
    Ok(Ok(v))
}

pub(crate) async fn read_body(req: reqwest::RequestBuilder) -> Result<Vec<u8>> {
    let mut resp = req.send().await.map_err(describe)?;
    let status = resp.status();
    if !status.is_success() {
        let mut text = resp.text().await.unwrap_or_default();
        text.truncate(300);
        bail!("HTTP {status}: {}", text.trim());
    }
    if resp.headers().contains_key("x-vouch-truncated") {
        bail!("the node cut its answer short (x-vouch-truncated): refusing a partial answer");
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            bail!("answer larger than {MAX_ANSWER} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: reqwest::Error) -> anyhow::Error {
    if e.is_timeout() {
        anyhow::anyhow!("timed out")
    } else if e.is_connect() {
        anyhow::anyhow!("cannot connect: {e}")
    } else {
        anyhow::anyhow!("{e}")
    }
}
