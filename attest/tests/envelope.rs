//! Signing, opening, and every way an envelope is refused.

mod common;

use common::*;
use vouch_attest::*;

fn sample() -> (SecretKey, Verdict) {
    let k = key("A");
    let v = verdict(&k, 0, Digest::ZERO, artifact(1), Outcome::Good);
    (k, v)
}

fn code(bytes: &[u8]) -> &'static str {
    open(bytes).unwrap_err().code()
}

#[test]
fn sign_then_open_round_trips() {
    let (k, v) = sample();
    let signed = sign(&v, &k).unwrap();
    let opened = open(signed.envelope()).unwrap();
    assert_eq!(opened.verdict(), &v);
    assert_eq!(opened.id(), Digest::of(&encode_verdict(&v)));
    assert_eq!(opened.payload(), encode_verdict(&v).as_slice());
    assert_eq!(
        Envelope::decode(signed.envelope()).unwrap().encode(),
        signed.envelope()
    );
}

#[test]
fn the_hand_written_encoding_matches_the_library() {
    let (_, mut v) = sample();
    v.evidence.build_log = Some(Digest::of(b"log"));
    v.outcome = Outcome::Bad {
        rebuilt_sha256: artifact(9),
    };
    v.subject.release = Some("bookworm".into());
    v.inputs.source_url =
        Some("https://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc".into());
    assert_eq!(Item::Map(payload_fields(&v)).encode(), encode_verdict(&v));
}

#[test]
fn signing_with_another_key_is_refused() {
    let (_, v) = sample();
    assert_eq!(
        sign(&v, &key("B")).unwrap_err().code(),
        "signature.keyid_mismatch"
    );
}

#[test]
fn a_flipped_payload_bit_fails_the_signature() {
    let (k, v) = sample();
    let mut fields = payload_fields(&v);
    fields[4].1 = Item::Uint(v.issued_at ^ 1);
    let tampered = Item::Map(fields).encode();
    let sig_over_original = envelope(&encode_verdict(&v), &k);
    // Same signature, different payload.
    let mut bytes = sig_over_original.clone();
    let at = bytes
        .windows(tampered.len())
        .position(|w| w == encode_verdict(&v).as_slice())
        .unwrap();
    bytes[at..at + tampered.len()].copy_from_slice(&tampered);
    assert_eq!(code(&bytes), "signature.invalid");
}

#[test]
fn a_signature_by_another_key_fails() {
    let (_, v) = sample();
    let payload = encode_verdict(&v);
    let bytes = envelope_with(&payload, &key("B"), &v.signer.to_text());
    assert_eq!(code(&bytes), "signature.invalid");
}

#[test]
fn keyid_must_be_the_signer() {
    let (k, v) = sample();
    let bytes = envelope_with(&encode_verdict(&v), &k, &key("B").public_key().to_text());
    assert_eq!(code(&bytes), "signature.keyid_mismatch");
}

#[test]
fn exactly_one_signature() {
    let (k, v) = sample();
    let payload = encode_verdict(&v);
    let sig = Item::Map(vec![
        ("keyid".into(), text(&k.public_key().to_text())),
        (
            "sig".into(),
            Item::Bytes(k.sign(&pae(PAYLOAD_TYPE, &payload)).to_vec()),
        ),
    ]);
    for sigs in [vec![], vec![sig.clone(), sig]] {
        let bytes = Item::Map(vec![
            ("payloadType".into(), text(PAYLOAD_TYPE)),
            ("payload".into(), Item::Bytes(payload.clone())),
            ("signatures".into(), Item::Array(sigs)),
        ])
        .encode();
        assert_eq!(code(&bytes), "signature.count");
    }
}

#[test]
fn payload_errors_are_typed() {
    let (k, v) = sample();
    let with = |edit: &dyn Fn(&mut Fields)| {
        let mut f = payload_fields(&v);
        edit(&mut f);
        envelope(&Item::Map(f).encode(), &k)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("decode.unknown_version", with(&|f| f[0].1 = Item::Uint(2))),
        (
            "decode.unknown_field",
            with(&|f| f.push(("colour".into(), text("red")))),
        ),
        (
            "decode.missing_field",
            with(&|f| {
                f.remove(2);
            }),
        ),
        ("decode.wrong_type", with(&|f| f[2].1 = text("zero"))),
        (
            "decode.wrong_type",
            with(&|f| f[1].1 = Item::Bytes(vec![1; 31])),
        ),
        (
            "decode.non_canonical",
            with(&|f| f[2].1 = Item::LongUint(0, 1)),
        ),
        ("decode.non_canonical", with(&|f| f.swap(2, 3))),
        (
            "decode.non_canonical",
            with(&|f| {
                let Item::Map(s) = &mut f[5].1 else {
                    unreachable!()
                };
                s.insert(1, ("release".into(), Item::Null));
            }),
        ),
        (
            "decode.duplicate_field",
            with(&|f| f.push(("seq".into(), Item::Uint(0)))),
        ),
        ("decode.invalid_value", with(&|f| f[2].1 = Item::Uint(3))), // seq 3 with zero prev
        (
            "decode.invalid_value",
            with(&|f| {
                let Item::Map(s) = &mut f[5].1 else {
                    unreachable!()
                };
                s[5].1 = text("../../etc/passwd");
            }),
        ),
        (
            "decode.invalid_value",
            with(&|f| {
                let Item::Map(o) = &mut f[7].1 else {
                    unreachable!()
                };
                o[0].1 = text("BAD");
            }),
        ),
        (
            "decode.invalid_value",
            with(&|f| {
                let Item::Map(o) = &mut f[7].1 else {
                    unreachable!()
                };
                o[0].1 = text("MAYBE");
            }),
        ),
    ];
    for (want, bytes) in cases {
        let err = open(&bytes).unwrap_err();
        assert_eq!(err.code(), want, "{err}");
    }
}

#[test]
fn envelope_level_errors_are_typed() {
    let (k, v) = sample();
    let good = sign(&v, &k).unwrap().envelope().to_vec();

    assert_eq!(code(&good[..good.len() - 1]), "decode.truncated");
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(code(&trailing), "decode.trailing_bytes");
    let mut indefinite = good.clone();
    indefinite[0] = 0xbf; // map of indefinite length
    assert_eq!(code(&indefinite), "decode.indefinite_length");
    assert_eq!(code(&vec![0x40; MAX_ENVELOPE + 1]), "decode.too_large");

    // An oversized payload inside an envelope below the envelope limit is
    // still refused as too large.
    let mut f = payload_fields(&v);
    f.push(("pad".into(), Item::Bytes(vec![0; MAX_PAYLOAD])));
    let big = envelope(&Item::Map(f).encode(), &k);
    assert!(["decode.too_large"].contains(&code(&big)), "{}", code(&big));

    let wrong_type = Item::Map(vec![
        ("payloadType".into(), text("application/json")),
        ("payload".into(), Item::Bytes(encode_verdict(&v))),
        ("signatures".into(), Item::Array(vec![])),
    ])
    .encode();
    assert_eq!(code(&wrong_type), "decode.payload_type");
    // 0x6e is the head of a 14-byte text string: well-formed, wrong type.
    assert_eq!(code(b"not cbor at all"), "decode.wrong_type");
    assert_eq!(code(&[0xff]), "decode.unsupported_item");
}

#[test]
fn bad_verdicts_cannot_be_signed() {
    let (k, mut v) = sample();
    v.subject.filename = "a/b".into();
    assert_eq!(sign(&v, &k).unwrap_err().code(), "decode.invalid_value");
    let (k, mut v) = sample();
    v.subject.distribution = "Arch Linux".into();
    assert_eq!(sign(&v, &k).unwrap_err().code(), "decode.invalid_value");
    let (k, mut v) = sample();
    v.subject.name = "x".repeat(MAX_TEXT + 1);
    assert_eq!(sign(&v, &k).unwrap_err().code(), "decode.invalid_value");
}

#[test]
fn public_key_text_form() {
    let k = key("A").public_key();
    let text = k.to_text();
    assert!(text.starts_with("ed25519:"));
    assert_eq!(text.parse::<PublicKey>().unwrap(), k);
    assert_eq!(
        "ed25519:AAAA".parse::<PublicKey>().unwrap_err(),
        ParseError::KeyBase64
    );
    assert_eq!(
        "ssh-ed25519 AAAA".parse::<PublicKey>().unwrap_err(),
        ParseError::KeyPrefix
    );
    // The identity point is a weak key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        PublicKey::from_bytes(&identity).unwrap_err(),
        ParseError::KeyPoint
    );
    assert!(format!("{:?}", key("A")).contains(".."));
    assert!(!format!("{:?}", key("A")).contains(&hex::encode(*key("A").seed())));
}
