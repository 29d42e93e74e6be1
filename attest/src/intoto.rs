//! Export of a verdict as an in-toto Statement v1 inside a DSSE JSON
//! envelope, for in-toto and SLSA tooling.
//!
//! The statement's subject is the published artifact; the predicate carries
//! the verdict's fields, its id and the original vouch envelope, so a
//! vouch-aware consumer can check the original signature too. The DSSE JSON
//! envelope is signed by the verdict's own signer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::envelope::{VerifiedVerdict, open, pae};
use crate::error::{DecodeError, Error, SignatureError};
use crate::keys::{PublicKey, SecretKey};

/// DSSE payload type of an in-toto statement.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1 type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The vouch verdict predicate type.
pub const PREDICATE_TYPE: &str = "https://vouch-rebuilders.github.io/spec/verdict/v1";

#[derive(Serialize, Deserialize)]
struct DsseJson {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<DsseSig>,
}

#[derive(Serialize, Deserialize)]
struct DsseSig {
    keyid: String,
    sig: String,
}

/// The in-toto Statement (JSON) for a verdict.
pub fn statement(v: &VerifiedVerdict) -> serde_json::Value {
    let verdict = v.verdict();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": verdict.subject.filename,
            "digest": { "sha256": verdict.subject.sha256.to_hex() },
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verdict": verdict,
            "verdictId": v.id().to_hex(),
            "vouchEnvelope": STANDARD.encode(v.envelope()),
        },
    })
}

/// The statement in a DSSE JSON envelope signed by `key`, which must be the
/// verdict's signer.
pub fn export(v: &VerifiedVerdict, key: &SecretKey) -> Result<String, Error> {
    if key.public_key() != *v.signer() {
        return Err(SignatureError::KeyIdMismatch {
            keyid: key.public_key().to_text(),
            signer: v.signer().to_text(),
        }
        .into());
    }
    let payload =
        serde_json::to_vec(&statement(v)).map_err(|e| DecodeError::InvalidValue(e.to_string()))?;
    let sig = key.sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    let env = DsseJson {
        payload_type: INTOTO_PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(&payload),
        signatures: vec![DsseSig {
            keyid: key.public_key().to_text(),
            sig: STANDARD.encode(sig),
        }],
    };
    serde_json::to_string_pretty(&env).map_err(|e| DecodeError::InvalidValue(e.to_string()).into())
}

/// Checks an exported DSSE JSON envelope: its signature, and that the vouch
/// envelope inside verifies, is by the same signer and matches the subject.
/// Returns the embedded verdict.
pub fn verify_export(json_text: &str) -> Result<VerifiedVerdict, Error> {
    let bad = |m: &str| Error::from(DecodeError::InvalidValue(m.to_string()));
    let env: DsseJson =
        serde_json::from_str(json_text).map_err(|e| bad(&format!("DSSE JSON: {e}")))?;
    if env.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(DecodeError::PayloadType(env.payload_type).into());
    }
    let payload = STANDARD
        .decode(&env.payload)
        .map_err(|_| bad("payload is not base64"))?;
    let [sig] = env.signatures.as_slice() else {
        return Err(SignatureError::Count(env.signatures.len()).into());
    };
    let key: PublicKey = sig.keyid.parse()?;
    let raw = STANDARD
        .decode(&sig.sig)
        .map_err(|_| bad("sig is not base64"))?;
    let raw: [u8; 64] = raw.try_into().map_err(|_| bad("sig is not 64 bytes"))?;
    key.verify(&pae(INTOTO_PAYLOAD_TYPE, &payload), &raw)?;
    let st: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| bad(&format!("statement: {e}")))?;
    let inner = st["predicate"]["vouchEnvelope"]
        .as_str()
        .ok_or_else(|| bad("predicate.vouchEnvelope is missing"))?;
    let inner = STANDARD
        .decode(inner)
        .map_err(|_| bad("predicate.vouchEnvelope is not base64"))?;
    let v = open(&inner)?;
    if *v.signer() != key {
        return Err(bad(
            "the vouch envelope is by another signer than the DSSE signature",
        ));
    }
    if st != statement(&v) {
        return Err(bad(
            "the statement does not match the vouch envelope it carries",
        ));
    }
    Ok(v)
}
