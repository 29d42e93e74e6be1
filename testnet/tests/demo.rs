//! The demo runs end to end through the real `vouch` binary, and the
//! committed keyring matches the test-only key derivation.

use std::path::Path;

use vouch_testnet::{demo, keys};

#[test]
fn demo_verifies_rejects_and_stays_unknown_as_designed() {
    let dir = tempfile::tempdir().unwrap();
    let rows = demo::run(dir.path(), 3, true).unwrap();
    let get = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    for name in ["pacman", "filesystem", "zstd"] {
        assert_eq!(
            (get(name).status.as_str(), get(name).exit),
            ("VERIFIED", 0),
            "{name}"
        );
    }
    assert_eq!(
        (
            get("unrepro-kernel").status.as_str(),
            get("unrepro-kernel").exit
        ),
        ("REJECTED", 1)
    );
    assert_eq!(
        (get("flaky-llvm").status.as_str(), get("flaky-llvm").exit),
        ("UNKNOWN", 2)
    );
}

#[test]
fn committed_testnet_keyring_matches_the_derivation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys/testnet");
    let entries = vouch_attest::read_keyring(&dir).unwrap();
    assert_eq!(entries.len(), keys::KEYRING_NODES);
    for (i, e) in entries.iter().enumerate() {
        let n = i + 1;
        assert_eq!(e.name, keys::node_name(n));
        assert_eq!(e.key, keys::node_key(n).public_key());
        assert!(e.test_only);
        let text = std::fs::read_to_string(dir.join(format!("{}.toml", e.name))).unwrap();
        assert_eq!(text, keys::keyring_file(n));
    }
}
