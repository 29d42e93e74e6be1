//! `vouchd` as a real process, `vouch` as a real process: posting verdicts,
//! N-of-M verification across nodes, liars, gaps, forks, restarts, kill -9.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vouch_attest::*;
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::fixtures;
use vouch_testnet::node::NodeProcess;

fn key(name: &str) -> SecretKey {
    fixtures::key(&format!("vouch test key {name}"))
}

fn verdict(
    k: &SecretKey,
    seq: u64,
    prev: Digest,
    sha: Digest,
    name: &str,
    outcome: Outcome,
) -> VerifiedVerdict {
    fixtures::verdict(k, seq, prev, sha, name, outcome)
}

/// A chain of `n` GOOD verdicts by `k` about artifacts "artifact i".
fn chain(k: &SecretKey, n: u64) -> Vec<VerifiedVerdict> {
    fixtures::chain(k, n, "artifact")
}

fn rt() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn post(node: &NodeProcess, envelopes: &[&VerifiedVerdict]) -> (u16, Value) {
    let body = join_envelopes(envelopes.iter().map(|v| v.envelope()));
    post_raw(
        node,
        body,
        Some(&node.admin_token().unwrap()),
        "application/cbor",
    )
}

fn post_raw(node: &NodeProcess, body: Vec<u8>, token: Option<&str>, ct: &str) -> (u16, Value) {
    rt().block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/vouch/v1/verdicts", node.url()))
            .header("content-type", ct)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    })
}

fn get_json(node: &NodeProcess, path: &str) -> Value {
    rt().block_on(async {
        let resp = reqwest::get(format!("{}{path}", node.url())).await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    })
}

fn vouch(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(sibling_binary("vouch").unwrap())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vouch verify --sha256 HEX --policy policy.toml --node ... --json` in
/// `dir`: its exit code and its JSON answer.
fn verify_json(dir: &Path, sha256: &str, nodes: &[&NodeProcess]) -> (i32, Value) {
    let mut args = vec!["verify", "--sha256", sha256, "--policy", "policy.toml"];
    for n in nodes {
        args.extend(["--node", n.url()]);
    }
    args.push("--json");
    let (code, out, err) = vouch(&args, dir);
    let d = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, d)
}

fn write_policy(dir: &Path, names: &[&str], threshold: usize) {
    let mut p = format!("threshold = {threshold}\nveto_on_bad = true\n");
    for n in names {
        p += &format!(
            "[[signer]]\nname = \"{n}\"\noperator = \"{n}-op\"\nkey = \"{}\"\n",
            key(n).public_key()
        );
    }
    std::fs::write(dir.join("policy.toml"), p).unwrap();
}

#[test]
fn two_of_three_across_the_network_with_veto() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let node = NodeProcess::start(&dir.join("n1"), &[]).unwrap();
    std::fs::write(dir.join("pkg"), b"the package").unwrap();
    std::fs::write(dir.join("other"), b"another package").unwrap();
    let sha = Digest::of(b"the package");
    let [a, b, c] =
        ["A", "B", "C"].map(|n| verdict(&key(n), 0, Digest::ZERO, sha, "pkg", Outcome::Good));
    let (status, body) = post(&node, &[&a, &b]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    write_policy(dir, &["A", "B", "C"], 2);

    let (code, out, err) = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--node",
            node.url(),
            "--json",
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (d["status"].as_str(), d["good"].as_u64()),
        (Some("VERIFIED"), Some(2))
    );

    let (code, out, _) = vouch(
        &[
            "verify",
            "other",
            "--policy",
            "policy.toml",
            "--node",
            node.url(),
        ],
        dir,
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("UNKNOWN"));

    // C says GOOD, then (retrying) BAD: its latest word vetoes.
    let bad = verdict(
        &key("C"),
        1,
        c.id(),
        sha,
        "pkg",
        Outcome::Bad {
            rebuilt_sha256: Digest::of(b"x"),
        },
    );
    assert_eq!(post(&node, &[&c, &bad]).1["accepted"], 2);
    let (code, out, _) = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--node",
            node.url(),
        ],
        dir,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("C says BAD"), "{out}");

    // vouch query shows what the node holds, verified.
    let (code, out, _) = vouch(
        &[
            "query",
            "--node",
            node.url(),
            "--sha256",
            &sha.to_hex(),
            "--json",
        ],
        dir,
    );
    assert_eq!(code, 0);
    let q: Value = serde_json::from_str(&out).unwrap();
    // By sha256: each signer's latest verdict (C's BAD superseded its GOOD).
    assert_eq!(q["verdicts"].as_array().unwrap().len(), 3);
    let (code, out, _) = vouch(
        &["query", "--node", node.url(), "--name", "pkg", "--json"],
        dir,
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["verdicts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

/// A fake node: answers every request with `body` (or never answers).
fn fake_node(body: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            match &body {
                Some(b) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        b.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(b);
                }
                None => held.push(s), // never answer
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn liars_garbage_and_silence_do_not_stop_the_honest_answer() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let node = NodeProcess::start(&dir.join("n1"), &[]).unwrap();
    std::fs::write(dir.join("pkg"), b"the package").unwrap();
    let sha = Digest::of(b"the package");
    let [a, b, c] =
        ["A", "B", "C"].map(|n| verdict(&key(n), 0, Digest::ZERO, sha, "pkg", Outcome::Good));
    post(&node, &[&a]);
    write_policy(dir, &["A", "B", "C"], 2);

    // The liar serves C's envelope with a changed payload (a forged GOOD
    // for another package turned into this one) and B's real one.
    let mut forged = c.envelope().to_vec();
    let at = forged.windows(3).position(|w| w == b"pkg").unwrap();
    forged[at + 2] = b'X';
    let liar = fake_node(Some(join_envelopes(
        [&forged[..], b.envelope()].into_iter(),
    )));
    let garbage = fake_node(Some(b"<html>not cbor</html>".to_vec()));
    let silent = fake_node(None);

    let (code, out, err) = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--timeout",
            "2",
            "--json",
            "--node",
            node.url(),
            "--node",
            &liar,
            "--node",
            &garbage,
            "--node",
            &silent,
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        d["good"], 2,
        "A from the honest node, B's genuine envelope from the liar"
    );
    let dropped = d["dropped"].as_array().unwrap();
    assert!(
        dropped
            .iter()
            .any(|x| x["source"] == liar.as_str() && x["code"] == "signature.invalid"),
        "{out}"
    );
    let nodes = d["nodes"].as_array().unwrap();
    let by_url = |u: &str| nodes.iter().find(|n| n["url"] == u).unwrap().clone();
    assert!(
        !by_url(&garbage)["invalid"].as_array().unwrap().is_empty(),
        "garbage is reported"
    );
    assert!(
        dropped.iter().any(|x| x["source"] == garbage.as_str()),
        "{out}"
    );
    assert_eq!(by_url(&silent)["reachable"], false);
    assert!(
        by_url(&silent)["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );

    // Nobody reachable: exit 4.
    let (code, _, err) = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--timeout",
            "1",
            "--node",
            &silent,
        ],
        dir,
    );
    assert_eq!(code, 4, "{err}");
}

#[test]
fn writes_need_the_admin_token_and_bad_bodies_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&t.path().join("n1"), &[]).unwrap();
    let v = verdict(
        &key("A"),
        0,
        Digest::ZERO,
        Digest::of(b"p"),
        "p",
        Outcome::Good,
    );
    let body = v.envelope().to_vec();
    assert_eq!(
        post_raw(&node, body.clone(), None, "application/cbor").0,
        401
    );
    assert_eq!(
        post_raw(
            &node,
            body.clone(),
            Some("wrong-token-wrong-token"),
            "application/cbor"
        )
        .0,
        401
    );
    assert_eq!(
        get_json(&node, "/api/vouch/v1/status")["store"]["verdicts"],
        0,
        "a 401 changes nothing"
    );
    let token = node.admin_token().unwrap();
    assert_eq!(
        post_raw(&node, body.clone(), Some(&token), "application/json").0,
        415
    );
    let (status, err) = post_raw(
        &node,
        b"\x9f\x01".to_vec(),
        Some(&token),
        "application/cbor",
    );
    assert_eq!(status, 400);
    assert_eq!(err["error"], "bad_body");
    assert!(err["detail"].as_str().unwrap().contains("indefinite"));

    // One bad envelope beside good ones: each gets its own answer.
    let good2 = verdict(&key("A"), 1, v.id(), Digest::of(b"q"), "q", Outcome::Good);
    let mut tampered = good2.envelope().to_vec();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    let body = join_envelopes([v.envelope(), &tampered[..], b"junk".as_slice()].into_iter());
    let (status, r) = post_raw(&node, body, Some(&token), "application/cbor");
    assert_eq!(
        status, 400,
        "junk is not even a CBOR item: the whole body is refused: {r}"
    );
    let body = join_envelopes([v.envelope(), &tampered[..]].into_iter());
    let (status, r) = post_raw(&node, body, Some(&token), "application/cbor");
    assert_eq!(status, 200);
    assert_eq!(r["results"][0]["status"], "accepted");
    assert_eq!(r["results"][1]["status"], "rejected");
    assert_eq!(r["results"][1]["code"], "signature.invalid");

    let lookup = serde_json::json!({ "sha256": vec!["00".repeat(32); 10_001] });
    let status = rt().block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/vouch/v1/verdicts/lookup", node.url()))
            .json(&lookup)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 413);
    let bad_query = rt().block_on(async {
        reqwest::get(format!("{}/api/vouch/v1/verdicts?sha256=xyz", node.url()))
            .await
            .unwrap()
    });
    assert_eq!(bad_query.status().as_u16(), 400);
    let metrics = rt().block_on(async {
        reqwest::get(format!("{}/metrics", node.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics.contains("vouch_ingest_envelopes_total{source=\"http\",result=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vouch_verdicts_stored 1"));
}

#[test]
fn a_gap_is_held_then_completed_and_a_fork_becomes_a_proof() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let node = NodeProcess::start(&dir.join("n1"), &[]).unwrap();
    let a = chain(&key("A"), 5);
    let r = post(&node, &[&a[3], &a[4]]).1;
    assert_eq!(r["pending"], 2, "{r}");
    let signers = get_json(&node, "/api/vouch/v1/signers");
    assert!(signers["signers"].as_array().unwrap().is_empty());
    let r = post(&node, &[&a[0], &a[1], &a[2]]).1;
    assert_eq!(r["accepted"], 3, "{r}");
    let signers = get_json(&node, "/api/vouch/v1/signers");
    assert_eq!(
        signers["signers"][0]["seq"], 4,
        "held entries followed: {signers}"
    );
    assert_eq!(signers["signers"][0]["count"], 5);

    // The log endpoint serves a range as CBOR.
    let signer_hex = hex::encode(key("A").public_key().as_bytes());
    let body = rt().block_on(async {
        reqwest::get(format!(
            "{}/api/vouch/v1/log/{signer_hex}?from=1&limit=2",
            node.url()
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
    });
    let items = split_envelopes(&body, 10).unwrap();
    assert_eq!(items, vec![a[1].envelope(), a[2].envelope()]);

    // A second verdict at seq 2: a fork.
    let other = verdict(
        &key("A"),
        2,
        a[1].id(),
        Digest::of(b"elsewhere"),
        "elsewhere",
        Outcome::Good,
    );
    let r = post(&node, &[&other]).1;
    assert_eq!(r["results"][0]["code"], "fork", "{r}");
    let forks = get_json(&node, "/api/vouch/v1/forks");
    assert_eq!(forks["forks"].as_array().unwrap().len(), 1);
    assert_eq!(forks["forks"][0]["signer"], key("A").public_key().to_text());

    // vouch verify reports the signer as forked and does not count it.
    std::fs::write(dir.join("artifact0"), b"artifact 0").unwrap();
    let sha0 = Digest::of(b"artifact 0");
    let b0 = verdict(&key("B"), 0, Digest::ZERO, sha0, "pkg0", Outcome::Good);
    post(&node, &[&b0]);
    write_policy(dir, &["A", "B"], 2);
    let (code, out, _) = vouch(
        &[
            "verify",
            "artifact0",
            "--policy",
            "policy.toml",
            "--node",
            node.url(),
            "--json",
        ],
        dir,
    );
    assert_eq!(code, 2, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["signers"][0]["state"], "forked", "{out}");
    assert_eq!(d["good"], 1);
}

#[test]
fn restart_and_kill9_lose_nothing_acknowledged() {
    let t = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(&t.path().join("n1"), &[]).unwrap();
    let a = chain(&key("A"), 600);
    let mut acknowledged = 0usize;
    for round in 0..3 {
        let batch: Vec<&VerifiedVerdict> = a[round * 200..(round + 1) * 200].iter().collect();
        let (status, r) = post(&node, &batch);
        assert_eq!((status, r["accepted"].as_u64()), (200, Some(200)), "{r}");
        acknowledged += 200;
        // Crash right after the acknowledgement.
        node.kill9().unwrap();
        let checked = node.check().unwrap();
        assert!(
            checked.contains(&format!("{acknowledged} verdicts")),
            "{checked}"
        );
        node.start_again().unwrap();
        let status = get_json(&node, "/api/vouch/v1/status");
        assert_eq!(status["store"]["verdicts"], acknowledged as u64);
    }
    // A clean restart keeps everything too.
    node.restart().unwrap();
    let signers = get_json(&node, "/api/vouch/v1/signers");
    assert_eq!(signers["signers"][0]["count"], 600);
    let v = get_json(
        &node,
        &format!(
            "/api/vouch/v1/verdicts?sha256={}",
            a[599].verdict().subject.sha256
        ),
    );
    assert_eq!(v["verdicts"][0]["id"], a[599].id().to_hex());
    node.stop().unwrap();
    assert!(node.check().unwrap().contains("600 verdicts"));
}

/// Issue 8.1: A's GOOD at seq 0 is on node 1, A's conflicting BAD at seq 0
/// on node 2. `vouch verify` builds the fork proof itself and answers the
/// same whatever the order of --node.
#[test]
fn a_fork_split_across_nodes_counts_in_either_order() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let n1 = NodeProcess::start(&dir.join("n1"), &[]).unwrap();
    let n2 = NodeProcess::start(&dir.join("n2"), &[]).unwrap();
    let sha = Digest::of(b"the package");
    let good = verdict(&key("A"), 0, Digest::ZERO, sha, "pkg", Outcome::Good);
    let bad = verdict(
        &key("A"),
        0,
        Digest::ZERO,
        sha,
        "pkg",
        Outcome::Bad {
            rebuilt_sha256: Digest::of(b"x"),
        },
    );
    let b = verdict(&key("B"), 0, Digest::ZERO, sha, "pkg", Outcome::Good);
    assert_eq!(post(&n1, &[&good, &b]).1["accepted"], 2);
    assert_eq!(post(&n2, &[&bad]).1["accepted"], 1);
    write_policy(dir, &["A", "B"], 1);
    let hex = sha.to_hex();
    let mut answers = Vec::new();
    for (first, second) in [(&n1, &n2), (&n2, &n1)] {
        let (code, d) = verify_json(dir, &hex, &[first, second]);
        assert_eq!(d["status"], "VERIFIED", "{d}");
        assert_eq!(code, 0);
        assert!(
            d["signers"][0].to_string().contains("forked"),
            "{}",
            d["signers"][0]
        );
        assert_eq!(d["found_forks"].as_array().unwrap().len(), 1, "{d}");
        answers.push((
            d["status"].clone(),
            d["signers"].clone(),
            d["found_forks"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
}

/// Issue 8.2: 1,100 free signers' GOODs about one artifact do not hide a
/// trusted signer's BAD from `vouch verify`.
#[test]
fn a_flood_of_free_signers_does_not_hide_a_trusted_bad() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let node = NodeProcess::start(&dir.join("n1"), &[]).unwrap();
    let sha = Digest::of(b"the package");
    let flood: Vec<VerifiedVerdict> = (0..1100)
        .map(|i| {
            verdict(
                &key(&format!("sybil {i}")),
                0,
                Digest::ZERO,
                sha,
                "pkg",
                Outcome::Good,
            )
        })
        .collect();
    for chunk in flood.chunks(500) {
        let refs: Vec<&VerifiedVerdict> = chunk.iter().collect();
        let (status, body) = post(&node, &refs);
        assert_eq!(status, 200, "{body}");
    }
    let good = verdict(&key("A"), 0, Digest::ZERO, sha, "pkg", Outcome::Good);
    let bad = verdict(
        &key("B"),
        0,
        Digest::ZERO,
        sha,
        "pkg",
        Outcome::Bad {
            rebuilt_sha256: Digest::of(b"x"),
        },
    );
    assert_eq!(post(&node, &[&good, &bad]).1["accepted"], 2);
    write_policy(dir, &["A", "B"], 1);
    let (code, d) = verify_json(dir, &sha.to_hex(), &[&node]);
    assert_eq!(d["status"], "REJECTED", "{d}");
    assert_eq!(code, 1);
    // The all-signers listing is cut by signer and says so.
    let all = get_json(
        &node,
        &format!("/api/vouch/v1/verdicts?sha256={}", sha.to_hex()),
    );
    assert_eq!(all["truncated"], true);
}
