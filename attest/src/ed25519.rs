//! The one ed25519 verification rule of vouch, for single and batch
//! verification alike (spec/verdict.md §4.2–4.3).
//!
//! Signatures are checked with the cofactored equation of ZIP-215:
//! `[8]([S]B − R − [k]A) = 0`, where `k = SHA-512(R ‖ A ‖ M) mod ℓ` over the
//! encodings as received. `S` must be canonical (`S < ℓ`). `R` may be any
//! encoding of a curve point, non-canonical or of small or mixed order. The
//! key `A` must be the canonical encoding of a point that is not of small
//! order (checked once, when the key is decompressed).
//!
//! Because the batch equation is the same cofactored equation summed with
//! random 128-bit weights, a batch accepts a set of signatures exactly when
//! each one is accepted alone (up to a 2⁻¹²⁸ chance): nobody can craft a
//! signature that one verifier takes and another refuses. Built directly on
//! curve25519-dalek, which ed25519-dalek uses for signing.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use sha2::{Digest as _, Sha512};

use crate::error::SignatureError;

/// A public key that passed the key rule: canonical encoding, on the curve,
/// not of small order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

impl Key {
    /// Decompresses `bytes`, refusing non-points, non-canonical encodings and
    /// small-order (weak) keys.
    pub(crate) fn decompress(bytes: &[u8; 32]) -> Result<Key, SignatureError> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(SignatureError::BadKey)?;
        if !canonical_y(bytes) || point.is_small_order() {
            return Err(SignatureError::BadKey);
        }
        Ok(Key {
            bytes: *bytes,
            point,
        })
    }
}

/// Whether the y coordinate of an encoding (the low 255 bits) is below
/// p = 2²⁵⁵ − 19, checked on the bytes (no field inversion needed).
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// One signature to check: the key, the signed message in parts (they are
/// hashed one after the other, so no copy of the message is made) and the
/// 64 signature bytes.
pub(crate) struct Item<'a> {
    pub(crate) key: Key,
    pub(crate) message: &'a [&'a [u8]],
    pub(crate) sig: &'a [u8; 64],
}

/// The parts of a signature that are checked before any curve arithmetic.
struct Parsed {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// `S` (canonical) and `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
fn scalars(item: &Item<'_>) -> Result<(Scalar, Scalar), SignatureError> {
    let r_bytes = &item.sig[..32];
    let s_bytes: [u8; 32] = item.sig[32..]
        .try_into()
        .map_err(|_| SignatureError::Invalid)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(SignatureError::Invalid)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(item.key.bytes);
    for part in item.message {
        h.update(part);
    }
    let wide: [u8; 64] = h.finalize().into();
    Ok((s, Scalar::from_bytes_mod_order_wide(&wide)))
}

/// `R` as a curve point (any encoding of a point, §4.2).
fn r_point(item: &Item<'_>) -> Result<EdwardsPoint, SignatureError> {
    let r_bytes: [u8; 32] = item.sig[..32]
        .try_into()
        .map_err(|_| SignatureError::Invalid)?;
    CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(SignatureError::Invalid)
}

fn parse(item: &Item<'_>) -> Result<Parsed, SignatureError> {
    let (s, k) = scalars(item)?;
    Ok(Parsed {
        r: r_point(item)?,
        s,
        k,
    })
}

/// Checks one signature: `[8]([S]B − [k]A − R) = 0`.
///
/// When `[S]B − [k]A` encodes to exactly the bytes of `R` (every signature
/// an RFC 8032 signer makes) the equation holds without the cofactor, so
/// `R` need not be decompressed; only other signatures pay for that. The
/// set accepted is the same either way.
pub(crate) fn verify(item: &Item<'_>) -> Result<(), SignatureError> {
    let (s, k) = scalars(item)?;
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-item.key.point), &s);
    if sb_minus_ka.compress().0[..] == item.sig[..32] {
        return Ok(());
    }
    if (sb_minus_ka - r_point(item)?)
        .mul_by_cofactor()
        .is_identity()
    {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// Checks all of `items` at once with one multiscalar multiplication:
/// `[8](−(Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0` with 128-bit weights `zᵢ`
/// derived from a hash of every input (so they cannot be chosen by whoever
/// made the signatures). The terms of one key are summed first. `true` when
/// every signature is valid; `false` means at least one is not.
pub(crate) fn verify_batch(items: &[Item<'_>]) -> bool {
    let mut parsed = Vec::with_capacity(items.len());
    let mut transcript = Sha512::new();
    transcript.update(b"vouch batch v1");
    for item in items {
        let Ok(p) = parse(item) else {
            return false;
        };
        transcript.update(item.sig);
        transcript.update(item.key.bytes);
        transcript.update(p.k.as_bytes());
        parsed.push(p);
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut b_coefficient = Scalar::ZERO;
    let mut scalars: Vec<Scalar> = Vec::with_capacity(items.len() * 2 + 1);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(items.len() * 2 + 1);
    // Key terms, one per distinct key: key bytes → index into `scalars`.
    let mut key_slots: HashMap<[u8; 32], usize> = HashMap::new();
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    for (i, (item, p)) in items.iter().zip(&parsed).enumerate() {
        let z = weight(&seed, i);
        b_coefficient -= z * p.s;
        scalars.push(z);
        points.push(p.r);
        let zk = z * p.k;
        match key_slots.get(&item.key.bytes) {
            Some(&slot) => scalars[slot] += zk,
            None => {
                key_slots.insert(item.key.bytes, scalars.len());
                scalars.push(zk);
                points.push(item.key.point);
            }
        }
    }
    scalars[0] = b_coefficient;
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// The weight of the `index`th signature: 128 bits of SHA-512(seed ‖ index).
fn weight(seed: &[u8; 64], index: usize) -> Scalar {
    let mut h = Sha512::new();
    h.update(seed);
    h.update((index as u64).to_le_bytes());
    let out: [u8; 64] = h.finalize().into();
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&out[..16]);
    Scalar::from_bytes_mod_order(bytes)
}
