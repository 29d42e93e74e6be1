//! Property tests: every encodable verdict round-trips; every single-bit
//! change to an envelope is rejected.

mod common;

use proptest::prelude::*;
use vouch_attest::*;

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn txt() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._+~:@ é-]{1,60}"
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Good),
        digest().prop_map(|rebuilt_sha256| Outcome::Bad { rebuilt_sha256 }),
        prop_oneof![
            Just(FailReason::Fetch),
            Just(FailReason::Build),
            Just(FailReason::Timeout),
            Just(FailReason::Backend)
        ]
        .prop_map(|reason| Outcome::Fail { reason }),
    ]
}

prop_compose! {
    fn arb_verdict()(
        seed in any::<[u8; 32]>(),
        seq in any::<u64>(),
        prev in digest(),
        issued_at in any::<u64>(),
        distribution in "[a-z0-9-]{1,32}",
        release in proptest::option::of(txt()),
        component in proptest::option::of(txt()),
        architecture in txt(),
        name in txt(),
        version in txt(),
        filename in "[a-zA-Z0-9._+~-]{3,80}",
        sha256 in digest(),
        buildinfo_sha256 in proptest::option::of(digest()),
        source_url in proptest::option::of("https://[a-z.]{1,30}/[a-z0-9/._-]{0,200}"),
        backend in txt(),
        backend_version in txt(),
        outcome in outcome(),
        build_log in proptest::option::of(digest()),
        diffoscope in proptest::option::of(digest()),
    ) -> (SecretKey, Verdict) {
        let key = SecretKey::from_seed(&seed);
        let prev = if seq == 0 { Digest::ZERO } else if prev.is_zero() { Digest([1; 32]) } else { prev };
        let v = Verdict {
            version: FORMAT_VERSION,
            signer: key.public_key(),
            seq,
            prev,
            issued_at,
            subject: Subject { distribution, release, component, architecture, name, version, filename, sha256 },
            inputs: Inputs { buildinfo_sha256, source_url, backend, backend_version },
            outcome,
            evidence: Evidence { build_log, diffoscope },
        };
        (key, v)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_verdict_round_trips((key, v) in arb_verdict()) {
        let payload = encode_verdict(&v);
        prop_assert_eq!(&decode_verdict(&payload).unwrap(), &v);
        let signed = sign(&v, &key).unwrap();
        let opened = open(signed.envelope()).unwrap();
        prop_assert_eq!(opened.verdict(), &v);
        prop_assert_eq!(Envelope::decode(signed.envelope()).unwrap().encode(), signed.envelope().to_vec());
        // JSON (the form `vouch sign` reads) round-trips too.
        let json = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn every_single_bit_flip_is_rejected((key, v) in arb_verdict()) {
        let signed = sign(&v, &key).unwrap();
        let bytes = signed.envelope();
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[i / 8] ^= 1 << (i % 8);
            prop_assert!(open(&flipped).is_err(), "bit {} accepted", i);
        }
    }
}
