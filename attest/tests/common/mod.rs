//! Test fixtures: fixed test-only keys, sample verdicts, and a tiny CBOR
//! writer for crafting hostile encodings by hand.
#![allow(dead_code, unreachable_pub)]

use vouch_attest::*;

/// A test-only key: seed = SHA-256("vouch test key " + name).
pub fn key(name: &str) -> SecretKey {
    let seed = Digest::of(format!("vouch test key {name}").as_bytes());
    SecretKey::from_seed(seed.as_bytes())
}

pub fn artifact(n: u32) -> Digest {
    Digest::of(format!("artifact {n}").as_bytes())
}

pub fn verdict(key: &SecretKey, seq: u64, prev: Digest, sha: Digest, outcome: Outcome) -> Verdict {
    Verdict {
        version: FORMAT_VERSION,
        signer: key.public_key(),
        seq,
        prev,
        issued_at: 1_795_651_200 + seq,
        subject: Subject {
            distribution: "archlinux".into(),
            release: None,
            component: Some("core".into()),
            architecture: "x86_64".into(),
            name: "pacman".into(),
            version: "5.2.2-1".into(),
            filename: "pacman-5.2.2-1-x86_64.pkg.tar.zst".into(),
            sha256: sha,
        },
        inputs: Inputs {
            buildinfo_sha256: Some(Digest::of(b"buildinfo")),
            source_url: None,
            backend: "archlinux-repro".into(),
            backend_version: "20240101".into(),
        },
        outcome,
        evidence: Evidence::default(),
    }
}

/// Signs a chain of `n` verdicts by `key`, all about `sha`.
pub fn chain(key: &SecretKey, n: u64, sha: Digest) -> Vec<VerifiedVerdict> {
    let mut out: Vec<VerifiedVerdict> = Vec::new();
    let mut prev = Digest::ZERO;
    for seq in 0..n {
        let v = sign(&verdict(key, seq, prev, sha, Outcome::Good), key).unwrap();
        prev = v.id();
        out.push(v);
    }
    out
}

pub type Fields = Vec<(String, Item)>;

/// A CBOR item, for hand-made encodings.
#[derive(Clone, Debug)]
pub enum Item {
    Uint(u64),
    /// An unsigned integer with a deliberately long head (1, 2, 4 or 8 bytes).
    LongUint(u64, u8),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Item>),
    Map(Vec<(String, Item)>),
    Null,
}

pub fn text(s: &str) -> Item {
    Item::Text(s.to_string())
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 0x100 {
        out.extend([m | 24, n as u8]);
    } else if n < 0x10000 {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n < 0x1_0000_0000 {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(n.to_be_bytes());
    }
}

impl Item {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Item::Uint(n) => head(out, 0, *n),
            Item::LongUint(n, width) => {
                let info = match width {
                    1 => 24,
                    2 => 25,
                    4 => 26,
                    _ => 27,
                };
                out.push(info);
                let bytes = n.to_be_bytes();
                out.extend(&bytes[8 - *width as usize..]);
            }
            Item::Text(s) => {
                head(out, 3, s.len() as u64);
                out.extend(s.as_bytes());
            }
            Item::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend(b);
            }
            Item::Array(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.write(out);
                }
            }
            Item::Map(fields) => {
                head(out, 5, fields.len() as u64);
                for (k, v) in fields {
                    text(k).write(out);
                    v.write(out);
                }
            }
            Item::Null => out.push(0xf6),
        }
    }
}

/// The payload of `sample` as an editable field list (same bytes as the
/// canonical encoding when left unchanged).
pub fn payload_fields(v: &Verdict) -> Vec<(String, Item)> {
    let s = &v.subject;
    let mut subject = vec![("distribution".to_string(), text(&s.distribution))];
    if let Some(r) = &s.release {
        subject.push(("release".into(), text(r)));
    }
    if let Some(c) = &s.component {
        subject.push(("component".into(), text(c)));
    }
    subject.extend([
        ("architecture".into(), text(&s.architecture)),
        ("name".into(), text(&s.name)),
        ("version".into(), text(&s.version)),
        ("filename".into(), text(&s.filename)),
        ("sha256".into(), Item::Bytes(s.sha256.0.to_vec())),
    ]);
    let mut inputs = Vec::new();
    if let Some(b) = &v.inputs.buildinfo_sha256 {
        inputs.push(("buildinfo_sha256".to_string(), Item::Bytes(b.0.to_vec())));
    }
    if let Some(u) = &v.inputs.source_url {
        inputs.push(("source_url".into(), text(u)));
    }
    inputs.push(("backend".into(), text(&v.inputs.backend)));
    inputs.push(("backend_version".into(), text(&v.inputs.backend_version)));
    let outcome = match v.outcome {
        Outcome::Good => vec![("result".to_string(), text("GOOD"))],
        Outcome::Bad { rebuilt_sha256 } => vec![
            ("result".to_string(), text("BAD")),
            (
                "rebuilt_sha256".into(),
                Item::Bytes(rebuilt_sha256.0.to_vec()),
            ),
        ],
        Outcome::Fail { reason } => vec![
            ("result".to_string(), text("FAIL")),
            ("reason".into(), text(reason.as_str())),
        ],
    };
    let mut fields = vec![
        ("version".to_string(), Item::Uint(v.version)),
        ("signer".into(), Item::Bytes(v.signer.as_bytes().to_vec())),
        ("seq".into(), Item::Uint(v.seq)),
        ("prev".into(), Item::Bytes(v.prev.0.to_vec())),
        ("issued_at".into(), Item::Uint(v.issued_at)),
        ("subject".into(), Item::Map(subject)),
        ("inputs".into(), Item::Map(inputs)),
        ("outcome".into(), Item::Map(outcome)),
    ];
    let mut evidence = Vec::new();
    if let Some(l) = &v.evidence.build_log {
        evidence.push(("build_log".to_string(), Item::Bytes(l.0.to_vec())));
    }
    if let Some(d) = &v.evidence.diffoscope {
        evidence.push(("diffoscope".to_string(), Item::Bytes(d.0.to_vec())));
    }
    if !evidence.is_empty() {
        fields.push(("evidence".into(), Item::Map(evidence)));
    }
    fields
}

/// An envelope around `payload`, signed by `key` over the PAE, with the
/// given keyid.
pub fn envelope_with(payload: &[u8], key: &SecretKey, keyid: &str) -> Vec<u8> {
    envelope_raw(payload, keyid, &key.sign(&pae(PAYLOAD_TYPE, payload)))
}

/// An envelope around `payload` properly signed by `key`.
pub fn envelope(payload: &[u8], key: &SecretKey) -> Vec<u8> {
    envelope_with(payload, key, &key.public_key().to_text())
}

/// An envelope around `payload` with the given keyid and raw signature
/// bytes, for crafted signatures.
pub fn envelope_raw(payload: &[u8], keyid: &str, sig: &[u8]) -> Vec<u8> {
    Item::Map(vec![
        ("payloadType".into(), text(PAYLOAD_TYPE)),
        ("payload".into(), Item::Bytes(payload.to_vec())),
        (
            "signatures".into(),
            Item::Array(vec![Item::Map(vec![
                ("keyid".into(), text(keyid)),
                ("sig".into(), Item::Bytes(sig.to_vec())),
            ])]),
        ),
    ])
    .encode()
}
