//! in-toto Statement export in a DSSE JSON envelope.

mod common;

use common::*;
use vouch_attest::*;

#[test]
fn export_verifies_and_tampering_is_caught() {
    let k = key("A");
    let v = sign(
        &verdict(&k, 0, Digest::ZERO, artifact(1), Outcome::Good),
        &k,
    )
    .unwrap();
    let json = intoto::export(&v, &k).unwrap();
    assert_eq!(intoto::verify_export(&json).unwrap(), v);

    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["payloadType"], "application/vnd.in-toto+json");
    let st = intoto::statement(&v);
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["subject"][0]["digest"]["sha256"], artifact(1).to_hex());
    assert_eq!(st["predicate"]["verdict"]["outcome"]["result"], "GOOD");

    let tampered = json.replacen("\"sig\": \"", "\"sig\": \"A", 1);
    assert!(intoto::verify_export(&tampered).is_err());
    assert!(intoto::export(&v, &key("B")).is_err());
}
