//! Scenario tests of the federation: real `vouchd` processes talking libp2p
//! on loopback (and, for the partition, in network namespaces).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vouch_attest::*;
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::fixtures;
use vouch_testnet::http::{get_json, heads, post_envelopes};
use vouch_testnet::net::{Options, Testnet};
use vouch_testnet::node::NodeProcess;

/// The scenarios each run many processes; on a small machine they run one
/// at a time so that their timings mean something.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(name: &str) -> SecretKey {
    fixtures::key(&format!("vouch federation test {name}"))
}

fn verdict(k: &SecretKey, seq: u64, prev: Digest, sha: Digest) -> VerifiedVerdict {
    fixtures::verdict(k, seq, prev, sha, &format!("pkg{seq}"), Outcome::Good)
}

fn chain(k: &SecretKey, n: u64) -> Vec<VerifiedVerdict> {
    fixtures::chain(k, n, &k.public_key().to_text())
}

fn post(node: &NodeProcess, vs: &[VerifiedVerdict]) -> Value {
    let body = join_envelopes(vs.iter().map(|v| v.envelope()));
    post_envelopes(node.url(), &node.admin_token().unwrap(), body).unwrap()
}

/// The head seq of `signer` at `node`, if any.
fn head_seq(node: &NodeProcess, signer: &PublicKey) -> Option<u64> {
    heads(node.url()).ok()?.get(&signer.to_text()).map(|h| h.0)
}

fn has(node: &NodeProcess, signer: &PublicKey, seq: u64) -> bool {
    head_seq(node, signer).is_some_and(|s| s >= seq)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn a_verdict_reaches_every_node_of_ten() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let mut net = Testnet::start(t.path(), 10, Options::default()).unwrap();
    net.wait_connected(2, Duration::from_secs(60)).unwrap();
    // Give the gossip mesh a few heartbeats to form.
    std::thread::sleep(Duration::from_secs(2));
    let k = key("propagation");
    let vs = chain(&k, 20);
    let mut samples = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        let origin = i % net.nodes.len();
        let start = Instant::now();
        post(&net.nodes[origin], std::slice::from_ref(v));
        let mut arrived: BTreeMap<usize, Duration> = BTreeMap::new();
        while arrived.len() < net.nodes.len() {
            for (j, n) in net.nodes.iter().enumerate() {
                if !arrived.contains_key(&j) && has(n, &k.public_key(), i as u64) {
                    arrived.insert(j, start.elapsed());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "verdict {i} did not reach every node: {arrived:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        samples.extend(
            arrived
                .into_iter()
                .filter(|(j, _)| *j != origin)
                .map(|(_, d)| d),
        );
    }
    samples.sort();
    eprintln!(
        "propagation over 10 nodes, {} samples: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );
    // Every node holds all 20, in one unbroken log.
    for n in &net.nodes {
        assert_eq!(head_seq(n, &k.public_key()), Some(19));
    }
}

#[test]
fn a_stopped_node_and_a_late_joiner_catch_up() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let mut net = Testnet::start(
        t.path(),
        4,
        Options {
            sync_interval: 1,
            ..Options::default()
        },
    )
    .unwrap();
    net.wait_connected(2, Duration::from_secs(60)).unwrap();
    let k = key("catch-up");
    let vs = chain(&k, 10_000);

    net.nodes[3].stop().unwrap();
    for c in vs[..1000].chunks(250) {
        post(&net.nodes[0], c);
    }
    net.wait_all(Duration::from_secs(60), |n| {
        Ok(has(n, &k.public_key(), 999))
    })
    .unwrap();
    net.nodes[3].start_again().unwrap();
    let took = net
        .wait_all(Duration::from_secs(120), |n| {
            Ok(has(n, &k.public_key(), 999))
        })
        .unwrap();
    eprintln!("restarted node caught up 1,000 verdicts in {took:?}");

    for c in vs[1000..].chunks(2000) {
        post(&net.nodes[1], c);
    }
    net.wait_all(Duration::from_secs(120), |n| {
        Ok(has(n, &k.public_key(), 9_999))
    })
    .unwrap();
    let start = Instant::now();
    let late = net.add_node().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !has(late, &k.public_key(), 9_999) {
        assert!(
            Instant::now() < deadline,
            "the late joiner did not catch up: {:?}",
            head_seq(late, &k.public_key())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "late joiner caught up 10,000 verdicts in {:?}",
        start.elapsed()
    );
    late.stop().unwrap();
    assert!(late.check().unwrap().contains("10000 verdicts"));
}

#[test]
fn a_rogue_peer_stores_nothing_anywhere_and_is_scored_down() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let mut net = Testnet::start(t.path(), 3, Options::default()).unwrap();
    net.wait_connected(2, Duration::from_secs(60)).unwrap();
    let boot = net.nodes[0].p2p_addrs().unwrap()[0].clone();
    let mut rogue = Command::new(sibling_binary("vouch-testnet").unwrap())
        .args([
            "rogue",
            "--bootstrap",
            &boot,
            "--count",
            "30",
            "--linger",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    {
        use std::io::BufRead as _;
        let stdout = rogue.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut first_line)
            .unwrap();
    }
    let rogue_id = first_line.trim().to_string();
    let start = Instant::now();
    let mut score = None;
    while start.elapsed() < Duration::from_secs(60) {
        let peers = get_json(net.nodes[0].url(), "/api/vouch/v1/peers").unwrap();
        score = peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer_id"] == rogue_id.as_str())
            .and_then(|p| p["score"].as_f64());
        if score.is_some_and(|s| s < 0.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        score.is_some_and(|s| s < 0.0),
        "rogue {rogue_id} not scored down: {score:?}"
    );
    let _ = rogue.wait();
    let metrics = reqwest_text(&format!("{}/metrics", net.nodes[0].url()));
    assert!(
        metrics.contains("vouch_gossip_messages_total{source=\"gossip\",result=\"rejected\"}"),
        "{metrics}"
    );
    for n in &net.nodes {
        let status = get_json(n.url(), "/api/vouch/v1/status").unwrap();
        assert_eq!(
            status["store"]["verdicts"], 0,
            "nothing invalid is stored anywhere"
        );
        assert_eq!(status["store"]["pending"], 0);
    }
}

fn reqwest_text(url: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

#[test]
fn an_equivocating_signer_is_exposed_on_every_node() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let mut net = Testnet::start(t.path(), 5, Options::default()).unwrap();
    net.wait_connected(2, Duration::from_secs(60)).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let e = key("equivocator");
    let honest = key("honest");
    let sha = Digest::of(b"contested package");
    let x = verdict(&e, 0, Digest::ZERO, sha);
    let x2 = verdict(&e, 0, Digest::ZERO, Digest::of(b"another package"));
    let h = verdict(&honest, 0, Digest::ZERO, sha);
    post(&net.nodes[0], &[x]);
    post(&net.nodes[4], &[x2]);
    post(&net.nodes[2], &[h]);
    net.wait_all(Duration::from_secs(60), |n| {
        let f = get_json(n.url(), "/api/vouch/v1/forks")?;
        Ok(f["forks"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .unwrap();
    let dir = t.path();
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            "threshold = 1\n[[signer]]\nname = \"equivocator\"\noperator = \"e\"\nkey = \"{}\"\n[[signer]]\nname = \"honest\"\noperator = \"h\"\nkey = \"{}\"\n",
            e.public_key(),
            honest.public_key()
        ),
    )
    .unwrap();
    for n in &net.nodes {
        let out = Command::new(sibling_binary("vouch").unwrap())
            .args(["verify", "--sha256", &sha.to_hex(), "--policy"])
            .arg(dir.join("policy.toml"))
            .args(["--node", n.url(), "--json"])
            .output()
            .unwrap();
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(d["signers"][0]["state"], "forked", "{d}");
        assert!(d["reasons"].to_string().contains("forked"));
    }
}

#[test]
fn kill9_during_heavy_ingest_leaves_a_consistent_store_that_converges() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let mut net = Testnet::start(
        t.path(),
        3,
        Options {
            sync_interval: 1,
            ..Options::default()
        },
    )
    .unwrap();
    net.wait_connected(2, Duration::from_secs(60)).unwrap();
    let k = key("heavy");
    let vs = chain(&k, 6000);
    let url = net.nodes[1].url().to_string();
    let token = net.nodes[1].admin_token().unwrap();
    let batches: Vec<Vec<u8>> = vs[..4000]
        .chunks(100)
        .map(|c| join_envelopes(c.iter().map(|v| v.envelope())))
        .collect();
    let poster = std::thread::spawn(move || {
        let mut acknowledged = 0u64;
        for b in batches {
            match post_envelopes(&url, &token, b) {
                Ok(v) => acknowledged += v["accepted"].as_u64().unwrap_or(0),
                Err(_) => break,
            }
        }
        acknowledged
    });
    std::thread::sleep(Duration::from_millis(700));
    net.nodes[1].kill9().unwrap();
    let acknowledged = poster.join().unwrap();
    assert!(
        acknowledged > 0 && acknowledged < 4000,
        "the kill landed mid-ingest ({acknowledged})"
    );
    let report = net.nodes[1].check().unwrap();
    eprintln!("after kill -9 with {acknowledged} acknowledged: {report}");
    let stored: u64 = report
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        stored >= acknowledged,
        "lost acknowledged verdicts: {stored} < {acknowledged}"
    );
    net.nodes[1].start_again().unwrap();
    // The client resends what was not acknowledged, and the rest, to
    // another node; duplicates are no-ops.
    for c in vs[acknowledged as usize..].chunks(1000) {
        post(&net.nodes[0], c);
    }
    // All three converge to the same log.
    net.wait_all(Duration::from_secs(120), |n| {
        Ok(has(n, &k.public_key(), 5999))
    })
    .unwrap();
    let views: Vec<_> = net.nodes.iter().map(|n| heads(n.url()).unwrap()).collect();
    assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");
}

/// Two network namespaces joined by a veth pair; the partition takes the
/// link down. Removed on drop.
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn create(tag: &str) -> Option<Namespaces> {
        let ns = Namespaces {
            a: format!("vt{tag}a"),
            b: format!("vt{tag}b"),
        };
        let (va, vb) = (format!("{}v", ns.a), format!("{}v", ns.b));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.a.clone()],
            vec!["netns".into(), "add".into(), ns.b.clone()],
            vec![
                "link".into(),
                "add".into(),
                va.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                vb.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                va.clone(),
                "netns".into(),
                ns.a.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                vb.clone(),
                "netns".into(),
                ns.b.clone(),
            ],
        ];
        for s in steps {
            if !Command::new("ip")
                .args(&s)
                .status()
                .is_ok_and(|st| st.success())
            {
                return None;
            }
        }
        for (ns_name, dev, ip) in [(&ns.a, &va, "10.77.0.1/24"), (&ns.b, &vb, "10.77.0.2/24")] {
            for args in [
                vec!["addr", "add", ip, "dev", dev.as_str()],
                vec!["link", "set", dev.as_str(), "up"],
                vec!["link", "set", "lo", "up"],
            ] {
                let ok = Command::new("ip")
                    .args(["netns", "exec", ns_name, "ip"])
                    .args(&args)
                    .status()
                    .is_ok_and(|st| st.success());
                if !ok {
                    return None;
                }
            }
        }
        Some(ns)
    }

    fn link(&self, up: bool) {
        let dev = format!("{}v", self.a);
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                "ip",
                "link",
                "set",
                &dev,
                if up { "up" } else { "down" },
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot set the link {}", if up { "up" } else { "down" });
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Value {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(sibling_binary("vouch").unwrap())
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The partition: nodes 1 and 2 run in namespace A, nodes 3 and 4 in
/// namespace B; the only path between them is one veth pair. Taking the
/// link down separates the halves at the network layer (packets are
/// dropped, nothing is closed cleanly); bringing it up heals them.
#[test]
fn a_partition_heals_and_the_halves_converge() {
    let _serial = serial();
    if !running_as_root() {
        // CI runs as root and must skip nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must not skip: the partition scenario needs root for `ip netns`"
        );
        eprintln!("SKIPPED: the partition scenario needs root for `ip netns`");
        return;
    }
    let tag = format!("{}", std::process::id() % 100_000);
    let ns = Namespaces::create(&tag).expect("creating network namespaces (root, iproute2)");
    let t = tempfile::tempdir().unwrap();
    let start = |dir: &Path, ns_name: &str, ip: &str, boot: Option<&str>| {
        let listen = format!("/ip4/{ip}/tcp/0");
        let mut args = vec![
            "--http",
            "127.0.0.1:0",
            "--p2p-listen",
            &listen,
            "--sync-interval",
            "1",
        ];
        if let Some(b) = boot {
            args.extend(["--bootstrap", b]);
        }
        NodeProcess::start_wrapped(dir, &args, &["ip", "netns", "exec", ns_name]).unwrap()
    };
    let a1 = start(&t.path().join("a1"), &ns.a, "10.77.0.1", None);
    let boot = a1.p2p_addrs().unwrap()[0].clone();
    let a2 = start(&t.path().join("a2"), &ns.a, "10.77.0.1", Some(&boot));
    let b1 = start(&t.path().join("b1"), &ns.b, "10.77.0.2", Some(&boot));
    let b2 = start(&t.path().join("b2"), &ns.b, "10.77.0.2", Some(&boot));
    let nodes = [(&ns.a, &a1), (&ns.a, &a2), (&ns.b, &b1), (&ns.b, &b2)];

    let signers_at = |ns_name: &str, n: &NodeProcess| -> BTreeMap<String, u64> {
        let q = ns.exec(
            ns_name,
            &["query", "--node", n.url(), "--name", "pkg0", "--json"],
        );
        let mut out = BTreeMap::new();
        for v in q["verdicts"].as_array().into_iter().flatten() {
            out.insert(
                v["verdict"]["signer"].as_str().unwrap_or("").to_string(),
                v["verdict"]["seq"].as_u64().unwrap_or(0),
            );
        }
        out
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        start.elapsed()
    };
    // Connected across the link first: a verdict posted in A reaches B.
    let warm = key("warm-up");
    let w = chain(&warm, 1);
    submit(&ns, &ns.a, &a1, &w, t.path());
    wait("the warm-up verdict to cross", &|| {
        nodes
            .iter()
            .all(|(n, p)| signers_at(n, p).contains_key(&warm.public_key().to_text()))
    });

    ns.link(false);
    // Wait until the connections across the link are gone (ping fails), so
    // that healing needs rediscovery, not just retransmission.
    let b_ids: Vec<String> = [&b1, &b2].iter().map(|n| n.peer_id().unwrap()).collect();
    wait("the connections across the partition to drop", &|| {
        let peers = ns.exec(&ns.a, &["peers", "--node", a1.url(), "--json"]);
        peers["peers"].is_array()
            && !peers["peers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| b_ids.iter().any(|b| p["peer_id"] == b.as_str()))
    });
    let (ka, kb) = (key("side-a"), key("side-b"));
    let (va, vb) = (chain(&ka, 50), chain(&kb, 50));
    submit(&ns, &ns.a, &a1, &va, t.path());
    submit(&ns, &ns.b, &b1, &vb, t.path());
    wait("each half to spread its own verdicts", &|| {
        signers_at(&ns.a, &a2).contains_key(&ka.public_key().to_text())
            && signers_at(&ns.b, &b2).contains_key(&kb.public_key().to_text())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !signers_at(&ns.b, &b1).contains_key(&ka.public_key().to_text()),
        "the partition leaked"
    );
    assert!(
        !signers_at(&ns.a, &a1).contains_key(&kb.public_key().to_text()),
        "the partition leaked"
    );

    ns.link(true);
    let took = wait("the halves to converge", &|| {
        nodes.iter().all(|(n, p)| {
            let s = signers_at(n, p);
            s.contains_key(&ka.public_key().to_text()) && s.contains_key(&kb.public_key().to_text())
        })
    });
    eprintln!("partition healed; converged in {took:?}");
    // Identical stores: the same heads everywhere.
    let views: Vec<Value> = nodes
        .iter()
        .map(|(n, p)| {
            ns.exec(
                n,
                &["query", "--node", p.url(), "--name", "pkg49", "--json"],
            )["verdicts"]
                .clone()
        })
        .collect();
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x["id"].as_str().unwrap_or("").to_string())
            .collect();
        ids.sort();
        ids
    };
    wait("pkg49 of both sides everywhere", &|| {
        nodes.iter().all(|(n, p)| {
            ids(&ns.exec(
                n,
                &["query", "--node", p.url(), "--name", "pkg49", "--json"],
            )["verdicts"])
            .len()
                == 2
        })
    });
    let first = ids(&views[0]);
    let _ = first;
    let all: Vec<Vec<String>> = nodes
        .iter()
        .map(|(n, p)| {
            ids(&ns.exec(
                n,
                &["query", "--node", p.url(), "--name", "pkg49", "--json"],
            )["verdicts"])
        })
        .collect();
    assert!(all.windows(2).all(|w| w[0] == w[1]), "{all:?}");
}

/// `vouch submit` from inside a namespace.
fn submit(ns: &Namespaces, ns_name: &str, node: &NodeProcess, vs: &[VerifiedVerdict], dir: &Path) {
    let file = dir.join(format!("submit-{}.cbor", vs[0].id()));
    std::fs::write(&file, join_envelopes(vs.iter().map(|v| v.envelope()))).unwrap();
    let token = node.data_dir().join("admin-token");
    let v = ns.exec(
        ns_name,
        &[
            "submit",
            "--node",
            node.url(),
            "--token-file",
            token.to_str().unwrap(),
            file.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(v[0]["accepted"].as_u64(), Some(vs.len() as u64), "{v}");
}

#[test]
fn a_sybil_flood_stays_within_the_limits_while_honest_verdicts_arrive() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let honest = key("honest under flood");
    let trusted = [
        vouch_testnet::keys::node_key(1).public_key(),
        vouch_testnet::keys::node_key(2).public_key(),
        honest.public_key(),
    ]
    .map(|k| format!("\"{k}\""))
    .join(", ");
    let config = format!(
        "[admission]\n\
         trusted = [{trusted}]\n\
         unknown_signer_max_verdicts = 20\n\
         unknown_total_max_verdicts = 400\n\
         [p2p]\n\
         max_inbound = 8\n\
         max_inbound_per_ip = 3\n\
         max_inbound_per_subnet = 3\n"
    );
    let mut net = Testnet::start(
        t.path(),
        2,
        Options {
            keyring_keys: true,
            config: Some(config),
            ..Options::default()
        },
    )
    .unwrap();
    net.wait_connected(1, Duration::from_secs(60)).unwrap();
    let victim = net.nodes[0].p2p_addrs().unwrap()[0].clone();
    // 24 fresh peer ids from one address, each gossiping 200 valid verdicts
    // of 20 fresh signers: 4,800 verdicts by 480 signers, every signer
    // within its own quota of 20.
    let flood = Command::new(sibling_binary("vouch-testnet").unwrap())
        .args([
            "sybil",
            "--target",
            &victim,
            "--peers",
            "24",
            "--signers",
            "20",
            "--verdicts",
            "10",
            "--linger",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Meanwhile an honest signer's verdicts reach node 2 and travel on.
    std::thread::sleep(Duration::from_secs(2));
    post(&net.nodes[1], &chain(&honest, 50));
    let start = Instant::now();
    while !has(&net.nodes[0], &honest.public_key(), 49) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the honest verdicts did not arrive under the flood: {:?}",
            head_seq(&net.nodes[0], &honest.public_key())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = flood.wait_with_output().unwrap();
    assert!(out.status.success(), "the flood failed");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("flood: {report}");
    // One address gets three connections, whatever its peer ids.
    let subscribed = report["subscribed"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&subscribed),
        "{subscribed} flooding peers got through"
    );
    // The store holds the honest log and at most the shared quota of the
    // strangers, pending entries included.
    let status = get_json(net.nodes[0].url(), "/api/vouch/v1/status").unwrap();
    let held = status["store"]["verdicts"].as_u64().unwrap()
        + status["store"]["pending"].as_u64().unwrap();
    assert!(
        held <= 400 + 50,
        "the victim holds {held} verdicts: {}",
        status["store"]
    );
    let metrics = reqwest_text(&format!("{}/metrics", net.nodes[0].url()));
    for reason in ["p2p.connection_limit", "quota.unknown_storage"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.contains(&format!("reason=\"{reason}\"")) && !l.ends_with(" 0")),
            "no {reason} drops counted:\n{metrics}"
        );
    }
    let bytes = dir_size(net.nodes[0].data_dir());
    eprintln!(
        "victim holds {held} verdicts in {:.1} MiB after the flood",
        bytes as f64 / 1048576.0
    );
    net.stop().unwrap();
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
