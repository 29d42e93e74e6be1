//! The `vouch` binary, run as a process.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn vouch(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn keygen(dir: &Path, name: &str) -> String {
    let o = vouch(&["keygen", "--out", &format!("{name}.key"), "--json"], dir);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    stdout_json(&o)["public_key"].as_str().unwrap().to_string()
}

fn verdict_json(sha: &str, outcome: Value) -> Value {
    json!({
        "issued_at": 1_795_651_200u64,
        "subject": {
            "distribution": "archlinux", "component": "core", "architecture": "x86_64",
            "name": "pacman", "version": "5.2.2-1",
            "filename": "pacman-5.2.2-1-x86_64.pkg.tar.zst", "sha256": sha
        },
        "inputs": {"backend": "archlinux-repro", "backend_version": "20240101"},
        "outcome": outcome
    })
}

fn sign(dir: &Path, key: &str, verdict: &Value, out: &str) {
    let json_path = dir.join(format!("{out}.json"));
    fs::write(&json_path, verdict.to_string()).unwrap();
    let o = vouch(
        &[
            "sign",
            "--key",
            &format!("{key}.key"),
            "--verdict",
            json_path.to_str().unwrap(),
            "--out",
            out,
        ],
        dir,
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

fn sha256_hex(path: &Path) -> String {
    vouch_attest::Digest::of(&fs::read(path).unwrap()).to_hex()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    (dir, p)
}

#[test]
fn keygen_writes_0600_and_refuses_to_overwrite() {
    let (_t, dir) = setup();
    let public = keygen(&dir, "a");
    assert!(public.starts_with("ed25519:"));
    let mode = fs::metadata(dir.join("a.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        fs::read_to_string(dir.join("a.key.pub")).unwrap().trim(),
        public
    );
    let o = vouch(&["keygen", "--out", "a.key"], &dir);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists already"));
}

#[test]
fn sign_inspect_and_tamper() {
    let (_t, dir) = setup();
    let public = keygen(&dir, "a");
    let sha = "29f9bbb2deecaa1ba83a0296904984bcd3d2d7e1f59e4ff1dc80d37d8344f92c";
    sign(
        &dir,
        "a",
        &verdict_json(sha, json!({"result": "GOOD"})),
        "v.cbor",
    );

    let o = vouch(&["inspect", "v.cbor", "--json"], &dir);
    assert_eq!(code(&o), 0);
    let j = stdout_json(&o);
    assert_eq!(j["valid"], true);
    assert_eq!(j["verdict"]["signer"], public);
    assert_eq!(j["verdict"]["subject"]["sha256"], sha);
    assert_eq!(j["verdict"]["outcome"]["result"], "GOOD");
    let o = vouch(&["inspect", "v.cbor"], &dir);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("signature   VALID") && text.contains("2026-11-26T00:00:00Z"),
        "{text}"
    );

    // Flip one bit of the package name inside the payload: signature fails.
    let mut bytes = fs::read(dir.join("v.cbor")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"pacman").unwrap();
    bytes[at] ^= 1;
    fs::write(dir.join("t.cbor"), &bytes).unwrap();
    let o = vouch(&["inspect", "t.cbor", "--json"], &dir);
    assert_eq!(code(&o), 1);
    let j = stdout_json(&o);
    assert_eq!(j["error"]["code"], "signature.invalid");
    assert_eq!(j["verdict"]["subject"]["name"], "qacman");

    // Truncated: malformed, exit 3.
    fs::write(dir.join("m.cbor"), &bytes[..bytes.len() - 5]).unwrap();
    let o = vouch(&["inspect", "m.cbor", "--json"], &dir);
    assert_eq!(code(&o), 3);
    assert_eq!(stdout_json(&o)["error"]["code"], "decode.truncated");
}

#[test]
fn sign_refuses_bad_input() {
    let (_t, dir) = setup();
    keygen(&dir, "a");
    let v = verdict_json("nothex", json!({"result": "GOOD"}));
    fs::write(dir.join("v.json"), v.to_string()).unwrap();
    let o = vouch(
        &[
            "sign",
            "--key",
            "a.key",
            "--verdict",
            "v.json",
            "--out",
            "v.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("v.json"));
    assert!(!dir.join("v.cbor").exists());

    let sha = "29f9bbb2deecaa1ba83a0296904984bcd3d2d7e1f59e4ff1dc80d37d8344f92c";
    let v = verdict_json(sha, json!({"result": "BAD"}));
    fs::write(dir.join("v.json"), v.to_string()).unwrap();
    let o = vouch(
        &[
            "sign",
            "--key",
            "a.key",
            "--verdict",
            "v.json",
            "--out",
            "v.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("BAD carries rebuilt_sha256"));

    fs::set_permissions(dir.join("a.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let v = verdict_json(sha, json!({"result": "GOOD"}));
    fs::write(dir.join("v.json"), v.to_string()).unwrap();
    let o = vouch(
        &[
            "sign",
            "--key",
            "a.key",
            "--verdict",
            "v.json",
            "--out",
            "v.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("chmod 600"));
}

#[test]
fn policy_check() {
    let (_t, dir) = setup();
    let a = keygen(&dir, "a");
    fs::write(
        dir.join("p.toml"),
        format!("threshold = 1\n[[signer]]\nname = \"a\"\noperator = \"alice\"\nkey = \"{a}\"\n"),
    )
    .unwrap();
    let o = vouch(&["policy", "check", "p.toml", "--json"], &dir);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout_json(&o)["configured"], 1);
    fs::write(
        dir.join("q.toml"),
        "threshold = 1\n\n[[signer]]\nname = \"a\"\n",
    )
    .unwrap();
    let o = vouch(&["policy", "check", "q.toml"], &dir);
    assert_eq!(code(&o), 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("q.toml") && err.contains("line 3"), "{err}");
}

#[test]
fn verify_two_of_three_offline() {
    let (_t, dir) = setup();
    let keys: Vec<String> = ["a", "b", "c"].iter().map(|n| keygen(&dir, n)).collect();
    let mut policy = String::from("threshold = 2\nveto_on_bad = true\n");
    for (n, k) in ["a", "b", "c"].iter().zip(&keys) {
        policy += &format!("[[signer]]\nname = \"{n}\"\noperator = \"{n}-op\"\nkey = \"{k}\"\n");
    }
    fs::write(dir.join("policy.toml"), policy).unwrap();
    fs::write(dir.join("pkg"), b"the package").unwrap();
    fs::write(dir.join("other"), b"another package").unwrap();
    let sha = sha256_hex(&dir.join("pkg"));
    sign(
        &dir,
        "a",
        &verdict_json(&sha, json!({"result": "GOOD"})),
        "a.cbor",
    );
    sign(
        &dir,
        "b",
        &verdict_json(&sha, json!({"result": "GOOD"})),
        "b.cbor",
    );
    let bad = json!({"result": "BAD", "rebuilt_sha256": "00".repeat(32)});
    sign(&dir, "c", &verdict_json(&sha, bad), "c.cbor");

    // Bundle a and b into one CBOR array file.
    let a = fs::read(dir.join("a.cbor")).unwrap();
    let b = fs::read(dir.join("b.cbor")).unwrap();
    fs::write(
        dir.join("ab.cbor"),
        vouch_attest::join_envelopes([&a[..], &b[..]].into_iter()),
    )
    .unwrap();

    let o = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--verdicts",
            "ab.cbor",
            "--json",
        ],
        &dir,
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let j = stdout_json(&o);
    assert_eq!(j["status"], "VERIFIED");
    assert_eq!(
        (j["good"].as_u64(), j["configured"].as_u64()),
        (Some(2), Some(3))
    );

    let o = vouch(
        &[
            "verify",
            "other",
            "--policy",
            "policy.toml",
            "--verdicts",
            "ab.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("UNKNOWN"));

    let o = vouch(
        &[
            "verify",
            "pkg",
            "--policy",
            "policy.toml",
            "--verdicts",
            "ab.cbor",
            "c.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("c says BAD"));

    // A tampered envelope is dropped and reported, the rest still count.
    let mut t = b.clone();
    let n = t.len();
    t[n - 1] ^= 1;
    fs::write(dir.join("tampered.cbor"), t).unwrap();
    let o = vouch(
        &[
            "verify",
            "--sha256",
            &sha,
            "--policy",
            "policy.toml",
            "--verdicts",
            "a.cbor",
            "tampered.cbor",
            "--json",
        ],
        &dir,
    );
    assert_eq!(code(&o), 2);
    let j = stdout_json(&o);
    assert_eq!(j["dropped"][0]["code"], "signature.invalid");

    let o = vouch(
        &[
            "verify",
            "--sha256",
            "xyz",
            "--policy",
            "policy.toml",
            "--verdicts",
            "a.cbor",
        ],
        &dir,
    );
    assert_eq!(code(&o), 3);
    let o = vouch(
        &["verify", "--policy", "policy.toml", "--verdicts", "a.cbor"],
        &dir,
    );
    assert_eq!(code(&o), 3, "usage errors are 3, never clap's 2");
}

#[test]
fn completions_and_manual_pages_come_from_the_definitions() {
    let (t, dir) = setup();
    let o = vouch(&["completions", "bash"], &dir);
    assert_eq!(code(&o), 0);
    let script = String::from_utf8_lossy(&o.stdout);
    for sub in [
        "check-installed",
        "pacman-hook",
        "apt-hook",
        "export",
        "config",
    ] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    let o = vouch(&["completions", "zsh"], &dir);
    assert!(String::from_utf8_lossy(&o.stdout).contains("#compdef vouch"));
    let man = t.path().join("man1");
    let o = vouch(&["man", "--out", man.to_str().unwrap()], &dir);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let page = fs::read_to_string(man.join("vouch-check-installed.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("vouch\\-check\\-installed"), "{page}");
    assert!(man.join("vouch.1").exists() && man.join("vouch-pacman-hook.1").exists());
    // Every command has help text.
    for sub in [
        "keygen",
        "sign",
        "inspect",
        "verify",
        "submit",
        "query",
        "check-installed",
        "pacman-hook",
        "apt-hook",
        "export",
        "completions",
        "man",
    ] {
        let o = vouch(&[sub, "--help"], &dir);
        assert_eq!(code(&o), 0, "{sub}");
        assert!(o.stdout.len() > 100, "{sub}");
    }
}

#[test]
fn config_check_names_file_line_and_column() {
    let (t, dir) = setup();
    let bad = t.path().join("client.toml");
    fs::write(&bad, "nodes = [\"http://a\"]\ntimeout_secs = \"soon\"\n").unwrap();
    let o = vouch(&["config", "check", bad.to_str().unwrap()], &dir);
    assert_eq!(code(&o), 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:2:16", bad.display())), "{err}");
    // VOUCH_CONFIG names the file too.
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["config", "check"])
        .env("VOUCH_CONFIG", &bad)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains(":2:16"));
    // A good one, from the documented example.
    let pubkey = keygen(&dir, "a");
    let good = t.path().join("good.toml");
    fs::write(
        &good,
        format!(
            "nodes = [\"http://127.0.0.1:1\"]\n[policy]\nthreshold = 1\n[[policy.signer]]\nname = \"a\"\noperator = \"a\"\nkey = \"{pubkey}\"\n"
        ),
    )
    .unwrap();
    let o = vouch(&["config", "check", "--json", good.to_str().unwrap()], &dir);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout_json(&o)["threshold"], 1);
    let o = vouch(&["config", "example"], &dir);
    assert!(String::from_utf8_lossy(&o.stdout).contains("on_unknown"));
}

#[test]
fn a_bundle_judges_with_a_policy_and_no_configuration() {
    let (_t, dir) = setup();
    let keys: Vec<String> = ["a", "b"].iter().map(|n| keygen(&dir, n)).collect();
    let mut policy = String::from("threshold = 2\n");
    for (n, k) in ["a", "b"].iter().zip(&keys) {
        policy += &format!("[[signer]]\nname = \"{n}\"\noperator = \"{n}\"\nkey = \"{k}\"\n");
    }
    fs::write(dir.join("policy.toml"), policy).unwrap();
    let sha = "ab".repeat(32);
    for n in ["a", "b"] {
        sign(
            &dir,
            n,
            &verdict_json(&sha, json!({"result": "GOOD"})),
            &format!("{n}.cbor"),
        );
    }
    let opened: Vec<vouch_attest::VerifiedVerdict> = ["a", "b"]
        .iter()
        .map(|n| vouch_attest::open(&fs::read(dir.join(format!("{n}.cbor"))).unwrap()).unwrap())
        .collect();
    let digest: vouch_attest::Digest = sha.parse().unwrap();
    let bundle = vouch_attest::Bundle::new(0, &[digest], &opened, &[]);
    fs::write(dir.join("b.bundle"), bundle.encode()).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(args)
            .current_dir(&dir)
            .env_remove("VOUCH_CONFIG")
            .output()
            .unwrap()
    };
    let o = run(&[
        "verify",
        "--sha256",
        &sha,
        "--policy",
        "policy.toml",
        "--bundle",
        "b.bundle",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("VERIFIED"));
    // No installed packages here: the error says so, not "no configuration".
    let o = run(&[
        "check-installed",
        "--root",
        ".",
        "--policy",
        "policy.toml",
        "--bundle",
        "b.bundle",
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no installed packages"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A file that is not a bundle is refused by name.
    fs::write(dir.join("junk.bundle"), b"junk").unwrap();
    let o = run(&[
        "verify",
        "--sha256",
        &sha,
        "--policy",
        "policy.toml",
        "--bundle",
        "junk.bundle",
    ]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.bundle: not a vouch bundle"));
}
