//! The test vectors in `spec/vectors/`.
//!
//! `vectors_match_the_files` regenerates every vector and fails on any byte
//! difference (set `VOUCH_UPDATE_VECTORS=1` to rewrite the files after a
//! deliberate format change). `vectors_check` reads the files and checks
//! each vector through the public API only, as another implementation would.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};
use vouch_attest::*;

const ISSUED: u64 = 1_795_651_200; // 2026-11-26T00:00:00Z

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn seed(name: &str) -> Digest {
    Digest::of(format!("vouch test key {name}").as_bytes())
}

fn minimal(k: &SecretKey) -> Verdict {
    Verdict {
        version: FORMAT_VERSION,
        signer: k.public_key(),
        seq: 0,
        prev: Digest::ZERO,
        issued_at: ISSUED,
        subject: Subject {
            distribution: "archlinux".into(),
            release: None,
            component: None,
            architecture: "x86_64".into(),
            name: "pacman".into(),
            version: "5.2.2-1".into(),
            filename: "pacman-5.2.2-1-x86_64.pkg.tar.zst".into(),
            sha256: Digest::of(b"pacman-5.2.2-1-x86_64.pkg.tar.zst"),
        },
        inputs: Inputs {
            buildinfo_sha256: None,
            source_url: None,
            backend: "archlinux-repro".into(),
            backend_version: "20240101".into(),
        },
        outcome: Outcome::Good,
        evidence: Evidence::default(),
    }
}

fn full(k: &SecretKey, prev: Digest) -> Verdict {
    let mut v = minimal(k);
    v.seq = 1;
    v.prev = prev;
    v.issued_at = ISSUED + 3600;
    v.subject.component = Some("core".into());
    v.inputs.buildinfo_sha256 = Some(Digest::of(b".BUILDINFO"));
    v.inputs.source_url =
        Some("https://gitlab.archlinux.org/archlinux/packaging/packages/pacman".into());
    v.outcome = Outcome::Bad {
        rebuilt_sha256: Digest::of(b"rebuilt pacman"),
    };
    v.evidence = Evidence {
        build_log: Some(Digest::of(b"build log")),
        diffoscope: Some(Digest::of(b"diffoscope output")),
    };
    v
}

fn debian(k: &SecretKey) -> Verdict {
    Verdict {
        version: FORMAT_VERSION,
        signer: k.public_key(),
        seq: 0,
        prev: Digest::ZERO,
        issued_at: ISSUED + 60,
        subject: Subject {
            distribution: "debian".into(),
            release: Some("bookworm".into()),
            component: Some("main".into()),
            architecture: "amd64".into(),
            name: "hello".into(),
            version: "2.10-3".into(),
            filename: "hello_2.10-3_amd64.deb".into(),
            sha256: Digest::of(b"hello_2.10-3_amd64.deb"),
        },
        inputs: Inputs {
            buildinfo_sha256: Some(Digest::of(b"hello_2.10-3.dsc")),
            source_url: Some(
                "https://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc".into(),
            ),
            backend: "debian".into(),
            backend_version: "0.1.0".into(),
        },
        outcome: Outcome::Fail {
            reason: FailReason::Timeout,
        },
        evidence: Evidence {
            build_log: Some(Digest::of(b"hello build log")),
            diffoscope: None,
        },
    }
}

fn positive(name: &str, key_name: &str, v: &Verdict) -> (Value, VerifiedVerdict) {
    let k = key(key_name);
    let signed = sign(v, &k).unwrap();
    let payload = encode_verdict(v);
    let value = json!({
        "name": name,
        "key": key_name,
        "verdict": v,
        "payload_hex": h(&payload),
        "pae_hex": h(&pae(PAYLOAD_TYPE, &payload)),
        "signature_hex": h(signed.signature()),
        "envelope_hex": h(signed.envelope()),
        "id": signed.id().to_hex(),
    });
    (value, signed)
}

fn negative(name: &str, description: &str, bytes: &[u8], error: &str) -> Value {
    // The generator itself must agree with the claimed error.
    let got = open(bytes).map(|_| ()).unwrap_err();
    assert_eq!(got.code(), error, "{name}: {got}");
    json!({ "name": name, "description": description, "envelope_hex": h(bytes), "error": error })
}

fn generate() -> Vec<(&'static str, Value)> {
    let (a, b) = (key("A"), key("B"));
    let keys = json!({
        "description": "Test-only ed25519 keys (RFC 8032 seeds). Never trust them. seed = SHA-256(\"vouch test key \" + name).",
        "keys": (["A", "B", "C"]).iter().map(|n| json!({
            "name": n,
            "seed_hex": seed(n).to_hex(),
            "public": key(n).public_key().to_text(),
            "public_hex": h(key(n).public_key().as_bytes()),
        })).collect::<Vec<_>>(),
    });

    let (p1, s1) = positive("good-minimal", "A", &minimal(&a));
    let (p2, s2) = positive("bad-all-fields", "A", &full(&a, s1.id()));
    let (p3, s3) = positive("fail-debian", "B", &debian(&b));
    let verdicts = json!({
        "description": "Valid envelopes. payload_hex is the canonical CBOR of verdict; signature is ed25519 over pae_hex; id is SHA-256 of the payload.",
        "payload_type": PAYLOAD_TYPE,
        "vectors": [p1, p2, p3],
    });

    let v = minimal(&a);
    let payload = encode_verdict(&v);
    let fields = payload_fields(&v);
    let edited = |edit: &dyn Fn(&mut Fields)| {
        let mut f = fields.clone();
        edit(&mut f);
        envelope(&Item::Map(f).encode(), &a)
    };
    let good = s1.envelope().to_vec();
    let mut flipped = good.clone();
    let name_at = flipped.windows(6).position(|w| w == b"pacman").unwrap();
    flipped[name_at] ^= 0x01; // "pacman" -> "qacman"
    let mut trailing = good.clone();
    trailing.push(0x00);
    let mut indefinite = good.clone();
    indefinite[0] = 0xbf;
    indefinite.push(0xff);
    let mut oversized = vec![0x5a, 0, 0, 0x44, 0x01];
    oversized.resize(MAX_ENVELOPE + 1, 0);
    let sig = Item::Map(vec![
        ("keyid".into(), text(&a.public_key().to_text())),
        (
            "sig".into(),
            Item::Bytes(a.sign(&pae(PAYLOAD_TYPE, &payload)).to_vec()),
        ),
    ]);
    let two_sigs = Item::Map(vec![
        ("payloadType".into(), text(PAYLOAD_TYPE)),
        ("payload".into(), Item::Bytes(payload.clone())),
        ("signatures".into(), Item::Array(vec![sig.clone(), sig])),
    ])
    .encode();
    let json_type = Item::Map(vec![
        ("payloadType".into(), text("application/vnd.in-toto+json")),
        ("payload".into(), Item::Bytes(payload.clone())),
        ("signatures".into(), Item::Array(vec![])),
    ])
    .encode();
    // issued_at as half-precision 0.0 (0xf9 0x00 0x00) inside a properly
    // signed payload.
    let float = {
        let mut p = Item::Map({
            let mut f = fields.clone();
            f[4].1 = Item::Uint(0);
            f
        })
        .encode();
        let at = p.windows(10).position(|w| w == b"issued_at\x00").unwrap() + 9;
        p.splice(at..at + 1, [0xf9, 0x00, 0x00]);
        envelope(&p, &a)
    };

    let neg = vec![
        negative(
            "flipped-payload-bit",
            "one bit of the payload changed after signing (the package name)",
            &flipped,
            "signature.invalid",
        ),
        negative(
            "wrong-key",
            "payload names key A as signer, signature made with key B",
            &envelope_with(&payload, &b, &a.public_key().to_text()),
            "signature.invalid",
        ),
        negative(
            "keyid-mismatch",
            "valid signature by A, but keyid names B",
            &envelope_with(&payload, &a, &b.public_key().to_text()),
            "signature.keyid_mismatch",
        ),
        negative(
            "two-signatures",
            "version 1 envelopes carry exactly one signature",
            &two_sigs,
            "signature.count",
        ),
        negative(
            "non-canonical-integer",
            "seq 0 written with a one-byte argument (0x18 0x00), validly signed",
            &edited(&|f| f[2].1 = Item::LongUint(0, 1)),
            "decode.non_canonical",
        ),
        negative(
            "non-canonical-key-order",
            "seq written before signer, validly signed",
            &edited(&|f| f.swap(1, 2)),
            "decode.non_canonical",
        ),
        negative(
            "non-canonical-null",
            "absent optional field written as null, validly signed",
            &edited(&|f| {
                let Item::Map(s) = &mut f[5].1 else {
                    unreachable!()
                };
                s.insert(1, ("release".into(), Item::Null));
            }),
            "decode.non_canonical",
        ),
        negative(
            "truncated",
            "the valid envelope good-minimal without its last byte",
            &good[..good.len() - 1],
            "decode.truncated",
        ),
        negative(
            "trailing-bytes",
            "the valid envelope good-minimal followed by 0x00",
            &trailing,
            "decode.trailing_bytes",
        ),
        negative(
            "indefinite-length",
            "the envelope map re-headed as indefinite-length (0xbf ... 0xff)",
            &indefinite,
            "decode.indefinite_length",
        ),
        negative(
            "oversized",
            "an input one byte over the envelope limit",
            &oversized,
            "decode.too_large",
        ),
        negative(
            "unknown-version",
            "version 2, validly signed",
            &edited(&|f| f[0].1 = Item::Uint(2)),
            "decode.unknown_version",
        ),
        negative(
            "unknown-field",
            "an extra top-level field `colour`, validly signed",
            &edited(&|f| f.push(("colour".into(), text("red")))),
            "decode.unknown_field",
        ),
        negative(
            "missing-field",
            "no `seq`, validly signed",
            &edited(&|f| {
                f.remove(2);
            }),
            "decode.missing_field",
        ),
        negative(
            "wrong-type",
            "`seq` as a text string, validly signed",
            &edited(&|f| f[2].1 = text("0")),
            "decode.wrong_type",
        ),
        negative(
            "duplicate-field",
            "`seq` given twice, validly signed",
            &edited(&|f| f.insert(3, ("seq".into(), Item::Uint(0)))),
            "decode.duplicate_field",
        ),
        negative(
            "float",
            "`issued_at` as a half-precision float, validly signed",
            &float,
            "decode.unsupported_item",
        ),
        negative(
            "path-in-filename",
            "subject.filename with a directory, validly signed",
            &edited(&|f| {
                let Item::Map(s) = &mut f[5].1 else {
                    unreachable!()
                };
                s[4].1 = text("../pacman.pkg.tar.zst");
            }),
            "decode.invalid_value",
        ),
        negative(
            "payload-type",
            "an in-toto payload type",
            &json_type,
            "decode.payload_type",
        ),
        negative(
            "weak-key",
            "signer is the identity point (small order), keyid to match",
            &{
                let mut identity = [0u8; 32];
                identity[0] = 1;
                let mut f = fields.clone();
                f[1].1 = Item::Bytes(identity.to_vec());
                let keyid = "ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
                envelope_with(&Item::Map(f).encode(), &a, keyid)
            },
            "signature.bad_key",
        ),
    ];
    let negative = json!({
        "description": "Invalid envelopes; each must be refused with the given error class.",
        "vectors": neg,
    });

    // Fork proofs.
    let alt = {
        let mut v = minimal(&a);
        v.outcome = Outcome::Bad {
            rebuilt_sha256: Digest::of(b"other"),
        };
        sign(&v, &a).unwrap()
    };
    let same_prev = {
        let mut v = full(&a, s1.id());
        v.seq = 2;
        sign(&v, &a).unwrap()
    };
    let (lo, hi) = if s1.id() < alt.id() {
        (&s1, &alt)
    } else {
        (&alt, &s1)
    };
    let raw = |x: &VerifiedVerdict, y: &VerifiedVerdict| {
        Item::Map(vec![
            ("version".into(), Item::Uint(1)),
            ("a".into(), Item::Bytes(x.envelope().to_vec())),
            ("b".into(), Item::Bytes(y.envelope().to_vec())),
        ])
        .encode()
    };
    let (c_lo, c_hi) = if s1.id() < s2.id() {
        (&s1, &s2)
    } else {
        (&s2, &s1)
    };
    let forks = json!({
        "description": "Fork proofs: CBOR map {version, a, b} of two envelope byte strings, a's id below b's.",
        "vectors": [
            { "name": "same-seq", "proof_hex": h(&ForkProof::new(&s1, &alt).unwrap().encode()), "signer": a.public_key().to_text(), "seq": 0 },
            { "name": "same-prev", "proof_hex": h(&ForkProof::new(&s2, &same_prev).unwrap().encode()), "signer": a.public_key().to_text(), "seq": 1 },
            { "name": "not-conflicting", "proof_hex": h(&raw(c_lo, c_hi)), "error": "fork.not_conflicting" },
            { "name": "wrong-order", "proof_hex": h(&raw(hi, lo)), "error": "fork.order" },
        ],
    });
    for f in forks["vectors"].as_array().unwrap() {
        let bytes = hex::decode(f["proof_hex"].as_str().unwrap()).unwrap();
        match f.get("error") {
            Some(e) => assert_eq!(ForkProof::open(&bytes).unwrap_err().code(), e),
            None => assert!(ForkProof::open(&bytes).is_ok()),
        }
    }

    // Policy evaluation.
    let c = key("C");
    let art = minimal(&a).subject.sha256;
    let good_by = |k: &SecretKey| sign(&minimal(k), k).unwrap();
    let bad_by = |k: &SecretKey| {
        let mut v = minimal(k);
        v.outcome = Outcome::Bad {
            rebuilt_sha256: Digest::of(b"other"),
        };
        sign(&v, k).unwrap()
    };
    let policy_text = |threshold: usize, veto: bool| {
        let mut t = format!("threshold = {threshold}\nveto_on_bad = {veto}\n");
        for (n, o) in [("A", "alice"), ("B", "bob"), ("C", "carol")] {
            t += &format!(
                "\n[[signer]]\nname = \"{n}\"\noperator = \"{o}\"\nkey = \"{}\"\n",
                key(n).public_key()
            );
        }
        t
    };
    let fork_b = ForkProof::new(&good_by(&b), &bad_by(&b)).unwrap();
    let cases = vec![
        (
            "two-of-three",
            policy_text(2, true),
            vec![good_by(&a), good_by(&b)],
            vec![],
            "VERIFIED",
        ),
        (
            "one-of-three",
            policy_text(2, true),
            vec![good_by(&a), good_by(&key("Mallory"))],
            vec![],
            "UNKNOWN",
        ),
        (
            "veto",
            policy_text(2, true),
            vec![good_by(&a), good_by(&b), bad_by(&c)],
            vec![],
            "REJECTED",
        ),
        (
            "bad-counted",
            policy_text(2, false),
            vec![good_by(&a), good_by(&b), bad_by(&c)],
            vec![],
            "VERIFIED",
        ),
        (
            "latest-counts",
            policy_text(1, true),
            vec![good_by(&a), s2.clone()],
            vec![],
            "REJECTED",
        ),
        (
            "forked-signer",
            policy_text(2, true),
            vec![good_by(&a), good_by(&b)],
            vec![fork_b],
            "UNKNOWN",
        ),
        (
            "conflict-in-verdicts",
            policy_text(2, true),
            vec![bad_by(&a), good_by(&b), good_by(&a)],
            vec![],
            "UNKNOWN",
        ),
        (
            "conflict-in-verdicts-reordered",
            policy_text(2, true),
            vec![good_by(&a), good_by(&b), bad_by(&a)],
            vec![],
            "UNKNOWN",
        ),
        (
            "other-artifact",
            policy_text(1, true),
            vec![s3.clone()],
            vec![],
            "UNKNOWN",
        ),
    ];
    let policy: Vec<Value> = cases
        .into_iter()
        .map(|(name, text, vs, fs, status)| {
            json!({
                "name": name,
                "policy_toml": text,
                "artifact": art.to_hex(),
                "now": ISSUED + 86_400,
                "envelopes_hex": vs.iter().map(|v| h(v.envelope())).collect::<Vec<_>>(),
                "fork_proofs_hex": fs.iter().map(|f: &ForkProof| h(&f.encode())).collect::<Vec<_>>(),
                "status": status,
            })
        })
        .collect();
    let policy = json!({
        "description": "Policy evaluation: the policy file, the artifact's sha256, the envelopes and fork proofs known, `now`, and the expected status.",
        "vectors": policy,
    });

    let signatures = signature_vectors(&fields);

    // A bundle: two verdicts and a fork proof about the policy vectors'
    // artifact, canonical; and bundles that must be refused.
    let fork_proof = ForkProof::decode(&bytes_of(&forks["vectors"][0]["proof_hex"])).unwrap();
    let fork_checked = fork_proof.check().unwrap();
    let bundle = Bundle::new(
        ISSUED,
        &[art, Digest::of(b"another artifact")],
        &[good_by(&a), good_by(&b)],
        &[fork_checked],
    );
    let wire = |version: u64, arts: Vec<Vec<u8>>| {
        Item::Map(vec![
            ("version".into(), Item::Uint(version)),
            ("created_at".into(), Item::Uint(ISSUED)),
            (
                "artifacts".into(),
                Item::Array(arts.into_iter().map(Item::Bytes).collect()),
            ),
            ("verdicts".into(), Item::Array(vec![])),
            ("forks".into(), Item::Array(vec![])),
        ])
        .encode()
    };
    let (lo, hi) = {
        let mut x = [art, Digest::of(b"another artifact")];
        x.sort();
        (x[0].as_bytes().to_vec(), x[1].as_bytes().to_vec())
    };
    let mut verdict_ids: Vec<String> = [good_by(&a), good_by(&b)]
        .iter()
        .map(|v| v.id().to_hex())
        .collect();
    verdict_ids.sort();
    let bundles = json!({
        "description": "Bundles (spec/bundle.md): canonical CBOR of version, created_at, artifacts, verdicts, forks; the lists sorted by the sha256 of their items, without repeats. Negative vectors name the decode error.",
        "vectors": [
            {
                "name": "two-verdicts-one-fork",
                "bundle_hex": h(&bundle.encode()),
                "artifacts": bundle.artifacts.iter().map(Digest::to_hex).collect::<Vec<_>>(),
                "verdict_ids": verdict_ids,
                "fork_ids": [fork_checked_id(&bundle)],
            },
            { "name": "unsorted-artifacts", "bundle_hex": h(&wire(1, vec![hi.clone(), lo.clone()])), "error": "decode.non_canonical" },
            { "name": "short-artifact", "bundle_hex": h(&wire(1, vec![lo[..31].to_vec()])), "error": "decode.invalid_value" },
            { "name": "unknown-version", "bundle_hex": h(&wire(2, vec![lo.clone()])), "error": "decode.unknown_version" },
        ],
    });

    vec![
        ("bundles.json", bundles),
        ("keys.json", keys),
        ("signatures.json", signatures),
        ("verdicts.json", verdicts),
        ("negative.json", negative),
        ("forks.json", forks),
        ("policy.json", policy),
    ]
}

/// Crafted signatures for the one signature rule (spec/verdict.md §4.2): a
/// key and a nonce made from scalars (not RFC 8032 seeds), so that `R` and
/// `A` can carry small-order components or non-canonical encodings. Each
/// vector must get the same answer from single and from batch verification.
fn signature_vectors(fields: &Fields) -> Value {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest as _, Sha512};

    let scalar = |label: &str| Scalar::from_bytes_mod_order_wide(&Sha512::digest(label).into());
    let a = scalar("vouch crafted key a");
    let r = scalar("vouch crafted nonce r");
    let honest_a = (B * a).compress().0;
    let mixed_a = (B * a + EIGHT_TORSION[1]).compress().0;
    // The identity (y = 1) written as y = p + 1: non-canonical, small order.
    let mut identity_noncanonical = [0xffu8; 32];
    identity_noncanonical[0] = 0xee;
    identity_noncanonical[31] = 0x7f;
    // The identity with the sign bit of x set ("negative zero").
    let mut identity_negative_zero = [0u8; 32];
    identity_negative_zero[0] = 1;
    identity_negative_zero[31] = 0x80;
    // y = 3 written as p + 3: a point of large (mixed) order, non-canonical.
    let mut y3_noncanonical = [0xffu8; 32];
    y3_noncanonical[0] = 0xf0;
    y3_noncanonical[31] = 0x7f;

    // An envelope whose payload names `key` as signer, signed with scalar
    // `a` and nonce point `r_point` (encoded as `r_bytes` when given);
    // `s_offset` is added to S unreduced (to make it non-canonical).
    let craft = |key: [u8; 32],
                 r_point: EdwardsPoint,
                 r_bytes: Option<[u8; 32]>,
                 nonce: Scalar,
                 bump_s: bool| {
        let mut f = fields.clone();
        f[1].1 = Item::Bytes(key.to_vec());
        let payload = Item::Map(f).encode();
        let r_bytes = r_bytes.unwrap_or(r_point.compress().0);
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(key);
        h.update(pae(PAYLOAD_TYPE, &payload));
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = nonce + k * a;
        let mut s_bytes = s.to_bytes();
        if bump_s {
            // S + ℓ, still fits in 253 bits.
            let l = Scalar::ZERO - Scalar::ONE;
            let mut carry = 1u16; // ℓ = (ℓ − 1) + 1
            let l_bytes = l.to_bytes();
            for (i, byte) in s_bytes.iter_mut().enumerate() {
                let v = *byte as u16 + l_bytes[i] as u16 + carry;
                *byte = v as u8;
                carry = v >> 8;
            }
        }
        let mut sig = r_bytes.to_vec();
        sig.extend_from_slice(&s_bytes);
        let keyid = format!("ed25519:{}", base64_std(&key));
        envelope_raw(&payload, &keyid, &sig)
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "honest",
            "an ordinary signature by a scalar-made key",
            craft(honest_a, B * r, None, r, false),
            "valid",
        ),
        (
            "r-mixed-order",
            "R = rB + T with T of order 8: refused by the cofactorless equation, accepted by the cofactored one, alone and in a batch",
            craft(honest_a, B * r + EIGHT_TORSION[1], None, r, false),
            "valid",
        ),
        (
            "r-small-order-noncanonical",
            "R is the identity written non-canonically (y = p + 1), S = k·a",
            craft(
                honest_a,
                EdwardsPoint::default(),
                Some(identity_noncanonical),
                Scalar::ZERO,
                false,
            ),
            "valid",
        ),
        (
            "r-negative-zero",
            "R is the identity with the sign bit of x set",
            craft(
                honest_a,
                EdwardsPoint::default(),
                Some(identity_negative_zero),
                Scalar::ZERO,
                false,
            ),
            "valid",
        ),
        (
            "a-mixed-order",
            "the key is aB + T with T of order 8 (canonical, not small order)",
            craft(mixed_a, B * r, None, r, false),
            "valid",
        ),
        (
            "s-not-canonical",
            "an otherwise valid signature with S + ℓ in place of S",
            craft(honest_a, B * r, None, r, true),
            "signature.invalid",
        ),
        (
            "a-noncanonical",
            "the key is a point of mixed order written non-canonically (y = p + 3)",
            craft(y3_noncanonical, B * r, None, r, false),
            "signature.bad_key",
        ),
        (
            "a-small-order-noncanonical",
            "the key is the identity written non-canonically (y = p + 1)",
            craft(identity_noncanonical, B * r, None, r, false),
            "signature.bad_key",
        ),
        (
            "r-not-a-point",
            "R's encoding is not a curve point (y = 2)",
            {
                let mut not_a_point = [0u8; 32];
                not_a_point[0] = 2;
                craft(honest_a, B * r, Some(not_a_point), r, false)
            },
            "signature.invalid",
        ),
    ];
    let vectors: Vec<Value> = cases
        .into_iter()
        .map(|(name, description, env, expect)| {
            let got = match open(&env) {
                Ok(_) => "valid".to_string(),
                Err(e) => e.code().to_string(),
            };
            assert_eq!(got, expect, "{name}: single verification");
            json!({"name": name, "description": description, "envelope_hex": h(&env), "expect": expect})
        })
        .collect();
    json!({
        "description": "Crafted signatures for the one signature rule (cofactored, ZIP-215, spec/verdict.md §4.2). expect is \"valid\" or the error class; single verification and batch verification (alone, and mixed into batches of valid envelopes) must both give it.",
        "vectors": vectors,
    })
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn signature_rule_is_the_same_for_single_and_batch() {
    let file = read("signatures.json");
    let cases: Vec<(String, Vec<u8>, String)> = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                bytes(&v["envelope_hex"]),
                v["expect"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let code = |r: &Result<VerifiedVerdict, Error>| match r {
        Ok(_) => "valid".to_string(),
        Err(e) => e.code().to_string(),
    };
    // Valid envelopes by ordinary keys, to mix the crafted ones into.
    let honest: Vec<Vec<u8>> = (0..7u32)
        .map(|i| {
            sign(
                &verdict(&key("A"), 0, Digest::ZERO, artifact(i), Outcome::Good),
                &key("A"),
            )
            .unwrap()
            .envelope()
            .to_vec()
        })
        .collect();
    for (name, env, expect) in &cases {
        assert_eq!(code(&open(env)), *expect, "{name}: single");
        for at in [0, 3, 7] {
            let mut batch: Vec<&[u8]> = honest.iter().map(Vec::as_slice).collect();
            batch.insert(at, env);
            let out = verify_batch(&batch);
            for (i, r) in out.iter().enumerate() {
                let want = if i == at { expect.as_str() } else { "valid" };
                assert_eq!(code(r), want, "{name} at {at} in a batch of 8: item {i}");
            }
        }
    }
    // All crafted valid ones together, in one batch equation (no bisection).
    let valid: Vec<&[u8]> = cases
        .iter()
        .filter(|c| c.2 == "valid")
        .map(|c| c.1.as_slice())
        .chain(honest.iter().map(Vec::as_slice))
        .collect();
    assert!(valid.len() >= 8);
    assert!(verify_batch(&valid).iter().all(Result::is_ok));
}

#[test]
fn vectors_match_the_files() {
    let update = std::env::var_os("VOUCH_UPDATE_VECTORS").is_some();
    for (file, value) in generate() {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir().join(file);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with VOUCH_UPDATE_VECTORS=1", path.display()));
        assert!(
            on_disk == text,
            "{} differs from the regenerated vectors; if the format changed on purpose, run with VOUCH_UPDATE_VECTORS=1",
            path.display()
        );
    }
}

fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn fork_checked_id(b: &Bundle) -> String {
    Digest::of(&b.forks[0]).to_hex()
}

fn read(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(file)).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn vectors_check() {
    let keys = read("keys.json");
    let secret = |name: &str| {
        let k = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap();
        let seed: [u8; 32] = bytes(&k["seed_hex"]).try_into().unwrap();
        let s = SecretKey::from_seed(&seed);
        assert_eq!(s.public_key().to_text(), k["public"]);
        s
    };
    for v in read("verdicts.json")["vectors"].as_array().unwrap() {
        let verdict: Verdict = serde_json::from_value(v["verdict"].clone()).unwrap();
        let payload = bytes(&v["payload_hex"]);
        assert_eq!(encode_verdict(&verdict), payload);
        assert_eq!(pae(PAYLOAD_TYPE, &payload), bytes(&v["pae_hex"]));
        let sk = secret(v["key"].as_str().unwrap());
        assert_eq!(
            sk.sign(&payload_pae(&payload)).to_vec(),
            bytes(&v["signature_hex"])
        );
        let opened = open(&bytes(&v["envelope_hex"])).unwrap();
        assert_eq!(opened.verdict(), &verdict);
        assert_eq!(opened.id().to_hex(), v["id"]);
    }
    for v in read("negative.json")["vectors"].as_array().unwrap() {
        let err = open(&bytes(&v["envelope_hex"])).unwrap_err();
        assert_eq!(err.code(), v["error"], "{}: {err}", v["name"]);
    }
    for v in read("bundles.json")["vectors"].as_array().unwrap() {
        let r = Bundle::decode(&bytes(&v["bundle_hex"]));
        match v.get("error") {
            Some(e) => assert_eq!(r.unwrap_err().code(), e, "{}", v["name"]),
            None => {
                let b = r.unwrap();
                assert_eq!(b.encode(), bytes(&v["bundle_hex"]), "re-encodes");
                let arts: Vec<String> = b.artifacts.iter().map(Digest::to_hex).collect();
                assert_eq!(json!(arts), v["artifacts"]);
                let opened = b.open();
                assert_eq!(opened.invalid, 0);
                let mut ids: Vec<String> =
                    opened.verdicts.iter().map(|x| x.id().to_hex()).collect();
                ids.sort();
                assert_eq!(json!(ids), v["verdict_ids"]);
                let forks: Vec<String> = opened.forks.iter().map(|f| f.id.to_hex()).collect();
                assert_eq!(json!(forks), v["fork_ids"]);
            }
        }
    }
    for v in read("forks.json")["vectors"].as_array().unwrap() {
        let r = ForkProof::open(&bytes(&v["proof_hex"]));
        match v.get("error") {
            Some(e) => assert_eq!(r.unwrap_err().code(), e, "{}", v["name"]),
            None => {
                let f = r.unwrap();
                assert_eq!(f.signer.to_text(), v["signer"]);
                assert_eq!(f.seq(), v["seq"].as_u64().unwrap());
            }
        }
    }
    for v in read("policy.json")["vectors"].as_array().unwrap() {
        let policy = Policy::from_toml(v["policy_toml"].as_str().unwrap()).unwrap();
        let envs: Vec<Vec<u8>> = v["envelopes_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes)
            .collect();
        let refs: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
        let verdicts: Vec<VerifiedVerdict> = verify_batch(&refs)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let forks: Vec<CheckedFork> = v["fork_proofs_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| ForkProof::open(&bytes(f)).unwrap())
            .collect();
        let artifact: Digest = v["artifact"].as_str().unwrap().parse().unwrap();
        let d = policy.evaluate(&artifact, &verdicts, &forks, v["now"].as_u64().unwrap());
        assert_eq!(d.status.as_str(), v["status"], "{}", v["name"]);
    }
}

fn payload_pae(payload: &[u8]) -> Vec<u8> {
    pae(PAYLOAD_TYPE, payload)
}
