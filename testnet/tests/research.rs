//! The researchers' commands across a testnet: `vouch stats` (counters the
//! node keeps as verdicts arrive) and `vouch watch` (a light gossip peer).

use serde_json::Value;
use vouch_testnet::client;
use vouch_testnet::demo::{PACKAGES, start_federation};
use vouch_testnet::keys::node_key;

#[test]
fn stats_count_each_signers_latest_outcomes_and_how_they_agree() {
    let t = tempfile::tempdir().unwrap();
    let fed = start_federation(t.path(), 3, 2).unwrap();
    let node = &fed.net.nodes[2];
    let (code, out, err) = client::vouch(None, &["stats", "--node", node.url(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdicts"], PACKAGES.len() * 3, "{v}");
    let key = |n: usize| node_key(n).public_key().to_text();
    let signer = |n: usize| -> Value {
        v["signers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signer"] == key(n))
            .unwrap_or_else(|| panic!("node {n} is not tracked: {v}"))
            .clone()
    };
    // Node 1 reproduces the flaky package; nodes 2 and 3 fail it.
    let n1 = signer(1);
    assert_eq!(
        (n1["good"].as_u64(), n1["bad"].as_u64(), n1["fail"].as_u64()),
        (Some(4), Some(1), Some(0))
    );
    let n3 = signer(3);
    assert_eq!(
        (n3["good"].as_u64(), n3["bad"].as_u64(), n3["fail"].as_u64()),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(n3["this_node"], true);
    assert_eq!(n3["repositories"][0]["distribution"], "archlinux");
    assert_eq!(n3["repositories"][0]["repository"], "core");
    assert_eq!(n3["rate"], 0.6);
    let pair = |a: usize, b: usize| -> Value {
        v["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                (p["a"] == key(a) && p["b"] == key(b)) || (p["a"] == key(b) && p["b"] == key(a))
            })
            .unwrap_or_else(|| panic!("no pair {a} {b}: {v}"))
            .clone()
    };
    // 2 and 3 agree on every outcome; both call the kernel BAD, but each
    // rebuilt different bytes.
    let p23 = pair(2, 3);
    assert_eq!(p23["both"], 5);
    assert_eq!(p23["same_outcome"], 5);
    assert_eq!(p23["both_bad"], 1);
    assert_eq!(p23["same_rebuilt"], 0);
    // 1 and 2 disagree on the flaky package only.
    let p12 = pair(1, 2);
    assert_eq!(p12["same_outcome"], 4, "{p12}");

    // The table.
    let (code, out, err) = client::vouch(None, &["stats", "--node", node.url()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("archlinux core"), "{out}");
    assert!(out.contains("60.0%"), "{out}");
    assert!(out.contains("5 of 5"), "{out}");
    assert!(out.contains("0 of 1"), "{out}");

    // Unreachable node: exit 4.
    let (code, _, _) = client::vouch(None, &["stats", "--node", "http://127.0.0.1:9"]);
    assert_eq!(code, 4);
}

/// `vouch watch` as a child process; its stdout lines and stderr.
struct Watcher {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Watcher {
    fn start(args: &[&str]) -> Watcher {
        use std::io::BufRead as _;
        let mut child =
            std::process::Command::new(vouch_testnet::demo::sibling_binary("vouch").unwrap())
                .arg("watch")
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let w = Watcher { child, stderr: rx };
        // Connected, then a moment for the subscriptions to be exchanged.
        let l = w
            .stderr
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("vouch watch never connected");
        assert!(l.contains("connected to"), "{l}");
        std::thread::sleep(std::time::Duration::from_secs(3));
        w
    }

    /// Waits for the exit; stdout's JSON lines and the rest of stderr.
    fn finish(mut self) -> (Vec<Value>, String) {
        use std::io::Read as _;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "vouch watch did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let err: Vec<String> = self.stderr.try_iter().collect();
        assert!(status.success(), "{status}: {err:?}");
        (
            out.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            err.join("\n"),
        )
    }
}

#[test]
fn watch_prints_verified_gossip_filtered_and_fork_proofs() {
    use vouch_attest::{Digest, Outcome};
    use vouch_testnet::fixtures;

    let t = tempfile::tempdir().unwrap();
    let fed = start_federation(t.path(), 2, 2).unwrap();
    let (a, b) = (&fed.net.nodes[0], &fed.net.nodes[1]);
    // Joined through node 1; verdicts are posted to node 2 and reach the
    // watcher by gossip.
    let watcher = Watcher::start(&[
        "--node",
        a.url(),
        "--filter",
        "outcome=BAD",
        "--count",
        "2",
        "--timeout",
        "60",
    ]);
    let k = fixtures::key("watched signer");
    let bad = |n: u8| Outcome::Bad {
        rebuilt_sha256: Digest::of(&[n]),
    };
    let log = fixtures::log(
        &k,
        &[
            (Digest::of(b"w0"), "first", Outcome::Good),
            (Digest::of(b"w1"), "second", bad(1)),
            (Digest::of(b"w2"), "third", bad(2)),
        ],
    );
    b.submit(&log).unwrap();
    let (lines, err) = watcher.finish();
    assert_eq!(lines.len(), 2, "{lines:?} {err}");
    for (l, v) in lines.iter().zip(&log[1..]) {
        assert_eq!(l["type"], "verdict");
        assert_eq!(l["id"], v.id().to_hex());
        assert_eq!(l["verdict"]["outcome"]["result"], "BAD");
        assert_eq!(l["verdict"]["signer"], k.public_key().to_text());
    }
    assert!(err.contains("0 dropped as invalid"), "{err}");

    // The signer forks: a second entry at seq 0. The proof travels.
    let watcher = Watcher::start(&[
        "--node",
        a.url(),
        "--filter",
        &format!("signer={}", k.public_key().to_text()),
        "--count",
        "1",
        "--timeout",
        "60",
    ]);
    let forked = fixtures::log(&k, &[(Digest::of(b"other"), "other", Outcome::Good)]);
    b.submit(&forked).unwrap();
    let (lines, err) = watcher.finish();
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(lines[0]["type"], "fork", "{lines:?}");
    assert_eq!(lines[0]["signer"], k.public_key().to_text());
    assert_eq!(lines[0]["seq"], 0);

    // Bad input is named.
    let (code, _, err) = client::vouch(
        None,
        &[
            "watch",
            "--filter",
            "colour=red",
            "--bootstrap",
            "/ip4/127.0.0.1/tcp/1",
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("colour"), "{err}");
}
