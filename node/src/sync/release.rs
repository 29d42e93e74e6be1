//! Signed repository metadata, checked the way apt does: a Debian
//! `InRelease` must carry a good signature by a key of the profile's
//! keyring (OpenPGP, verified with the `pgp` crate), name the release that
//! was asked for and not be past its `Valid-Until`; then every index file
//! read must have the size and SHA-256 that `InRelease` lists for it. An
//! Arch repository database is checked against its detached `.db.sig` when
//! the profile names a keyring.

use std::collections::BTreeMap;
use std::path::Path;

use pgp::composed::{
    CleartextSignedMessage, Deserializable as _, DetachedSignature, SignedPublicKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::{KeyDetails as _, Timestamp};
use vouch_attest::Digest;

use super::SyncError;

/// Largest keyring file read.
const MAX_KEYRING: u64 = 16 << 20;
/// Largest `InRelease` accepted (Debian's biggest are about 200 KB).
pub const MAX_INRELEASE: u64 = 8 << 20;
/// Largest detached signature accepted.
pub const MAX_SIGNATURE: u64 = 64 << 10;

/// OpenPGP public keys that may sign a repository's metadata.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    source: String,
}

/// A primary key or a subkey.
enum KeyRef<'a> {
    Primary(&'a pgp::packet::PublicKey),
    Sub(&'a pgp::packet::PublicSubkey),
}

impl KeyRef<'_> {
    fn verifies(&self, sig: &Signature, data: &[u8]) -> bool {
        match self {
            KeyRef::Primary(k) => sig.verify(*k, data).is_ok(),
            KeyRef::Sub(k) => sig.verify(*k, data).is_ok(),
        }
    }
}

/// A key or subkey that may make signatures, with its validity.
struct Signer<'a> {
    key: KeyRef<'a>,
    created: u32,
    expires: Option<u32>,
    who: String,
}

impl Keyring {
    /// Reads a keyring file (binary or ASCII-armored, one or more keys) or
    /// every `*.gpg`, `*.pgp` and `*.asc` file of a directory.
    pub fn load(path: &Path) -> Result<Keyring, SyncError> {
        let bad = |reason: String| SyncError::Signature {
            what: path.display().to_string(),
            reason,
        };
        let mut files = Vec::new();
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| bad(e.to_string()))?;
            for e in entries.flatten() {
                let p = e.path();
                if matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("gpg" | "pgp" | "asc")
                ) {
                    files.push(p);
                }
            }
            files.sort();
        } else {
            files.push(path.to_path_buf());
        }
        let mut keys = Vec::new();
        for f in &files {
            let meta = std::fs::metadata(f).map_err(|e| bad(format!("{}: {e}", f.display())))?;
            if meta.len() > MAX_KEYRING {
                return Err(bad(format!(
                    "{}: {} bytes, over {MAX_KEYRING}",
                    f.display(),
                    meta.len()
                )));
            }
            let bytes = std::fs::read(f).map_err(|e| bad(format!("{}: {e}", f.display())))?;
            keys.extend(parse_keys(&bytes).map_err(|e| bad(format!("{}: {e}", f.display())))?);
        }
        if keys.is_empty() {
            return Err(bad("no OpenPGP public key in it".into()));
        }
        Ok(Keyring {
            keys,
            source: path.display().to_string(),
        })
    }

    /// The keys and subkeys whose self-signatures and bindings verify.
    fn signers(&self) -> Vec<Signer<'_>> {
        let mut out = Vec::new();
        for k in &self.keys {
            if k.details.verify_bindings(&k.primary_key).is_err() {
                continue;
            }
            let who = k
                .details
                .users
                .first()
                .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
                .unwrap_or_else(|| format!("{:?}", k.primary_key.fingerprint()));
            let created = k.primary_key.created_at().as_secs();
            let primary_expires = k
                .details
                .users
                .iter()
                .flat_map(|u| u.signatures.iter())
                .filter_map(|s| s.key_expiration_time())
                .map(|d| created.saturating_add(d.as_secs()))
                .max();
            out.push(Signer {
                key: KeyRef::Primary(&k.primary_key),
                created,
                expires: primary_expires,
                who: who.clone(),
            });
            for sub in &k.public_subkeys {
                if sub.verify_bindings(&k.primary_key).is_err() {
                    continue;
                }
                let sub_created = sub.key.created_at().as_secs();
                let sub_expires = sub
                    .signatures
                    .iter()
                    .filter_map(|s| s.key_expiration_time())
                    .map(|d| sub_created.saturating_add(d.as_secs()))
                    .max();
                let expires = match (primary_expires, sub_expires) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                out.push(Signer {
                    key: KeyRef::Sub(&sub.key),
                    created: sub_created,
                    expires,
                    who: who.clone(),
                });
            }
        }
        out
    }

    /// Finds a signature among `sigs` made over `data` by a valid key of
    /// the keyring at a time the key was valid; returns who made it.
    fn check(
        &self,
        what: &str,
        sigs: &[&Signature],
        data: &[u8],
        now: u64,
    ) -> Result<String, SyncError> {
        let mut seen = Vec::new();
        for signer in self.signers() {
            for sig in sigs {
                if !signer.key.verifies(sig, data) {
                    continue;
                }
                let made = sig.created().map_or(0, Timestamp::as_secs);
                let weak = matches!(
                    sig.hash_alg(),
                    Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160)
                );
                let sig_expired = sig
                    .signature_expiration_time()
                    .is_some_and(|d| u64::from(made) + u64::from(d.as_secs()) < now);
                if weak {
                    seen.push(format!("{}: a weak hash", signer.who));
                } else if made < signer.created {
                    seen.push(format!("{}: made before the key existed", signer.who));
                } else if signer.expires.is_some_and(|e| made > e) {
                    seen.push(format!("{}: made after the key expired", signer.who));
                } else if sig_expired {
                    seen.push(format!("{}: the signature has expired", signer.who));
                } else {
                    return Ok(signer.who);
                }
            }
        }
        Err(SyncError::Signature {
            what: what.to_string(),
            reason: if seen.is_empty() {
                format!("no good signature by a key of {}", self.source)
            } else {
                format!(
                    "no acceptable signature by a key of {} ({})",
                    self.source,
                    seen.join("; ")
                )
            },
        })
    }

    /// Verifies a cleartext-signed document (`InRelease`) and returns its
    /// signed text and who signed it.
    pub fn verify_cleartext(
        &self,
        what: &str,
        text: &str,
        now: u64,
    ) -> Result<(String, String), SyncError> {
        let bad = |reason: String| SyncError::Signature {
            what: what.to_string(),
            reason,
        };
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| bad(format!("not a signed document: {e}")))?;
        let sigs: Vec<&Signature> = msg.signatures().iter().collect();
        let signed = msg.signed_text();
        let who = self.check(what, &sigs, signed.as_bytes(), now)?;
        // The text as the signature covers it, with LF line ends.
        Ok((signed.replace("\r\n", "\n"), who))
    }

    /// Verifies a detached signature (`.db.sig`, binary or armored) over
    /// `data`; returns who signed it.
    pub fn verify_detached(
        &self,
        what: &str,
        data: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<String, SyncError> {
        let parsed = if signature.starts_with(b"-----BEGIN") {
            DetachedSignature::from_armor_single(signature).map(|(s, _)| s)
        } else {
            DetachedSignature::from_bytes(signature)
        }
        .map_err(|e| SyncError::Signature {
            what: what.to_string(),
            reason: format!("not an OpenPGP signature: {e}"),
        })?;
        self.check(what, &[&parsed.signature], data, now)
    }
}

fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let (keys, _) = SignedPublicKey::from_reader_many(bytes).map_err(|e| e.to_string())?;
    // A key that does not parse is skipped, as gpgv does; none at all is an
    // error of the caller.
    Ok(keys.filter_map(Result::ok).collect())
}

/// What a verified `InRelease` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite` (`stable`, `oldstable`).
    pub suite: Option<String>,
    /// `Codename` (`bookworm`).
    pub codename: Option<String>,
    /// `Valid-Until`, in seconds since the epoch.
    pub valid_until: Option<u64>,
    /// Index files by path under `dists/RELEASE/`: SHA-256 and size.
    pub files: BTreeMap<String, (Digest, u64)>,
}

impl Release {
    /// Parses the signed text of an `InRelease` (or a `Release` file).
    pub fn parse(what: &str, text: &str) -> Result<Release, SyncError> {
        let bad = |reason: String| SyncError::Format {
            what: what.to_string(),
            reason,
        };
        let mut release = Release {
            suite: None,
            codename: None,
            valid_until: None,
            files: BTreeMap::new(),
        };
        let mut field = String::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix(' ') {
                if field != "SHA256" {
                    continue;
                }
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let [hash, size, path] = parts[..] else {
                    return Err(bad(format!("line {}: not `SHA256 SIZE PATH`", n + 1)));
                };
                let digest: Digest = hash
                    .parse()
                    .map_err(|_| bad(format!("line {}: bad SHA-256 `{hash}`", n + 1)))?;
                let size: u64 = size
                    .parse()
                    .map_err(|_| bad(format!("line {}: bad size `{size}`", n + 1)))?;
                release.files.insert(path.to_string(), (digest, size));
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad(format!("line {}: not `Field: value`", n + 1)));
            };
            field = name.to_string();
            let value = value.trim();
            match name {
                "Suite" => release.suite = Some(value.to_string()),
                "Codename" => release.codename = Some(value.to_string()),
                "Valid-Until" => {
                    release.valid_until = Some(parse_date(value).ok_or_else(|| {
                        bad(format!("line {}: bad Valid-Until `{value}`", n + 1))
                    })?);
                }
                _ => {}
            }
        }
        if release.files.is_empty() {
            return Err(bad("lists no files with SHA-256 sums".into()));
        }
        Ok(release)
    }

    /// Checks that this is the release asked for (by codename or suite)
    /// and still valid at `now`: a mirror cannot serve another release's
    /// signed metadata, nor replay an expired one.
    pub fn check(&self, what: &str, release: &str, now: u64) -> Result<(), SyncError> {
        let bad = |reason: String| SyncError::Signature {
            what: what.to_string(),
            reason,
        };
        if self.codename.as_deref() != Some(release) && self.suite.as_deref() != Some(release) {
            return Err(bad(format!(
                "signed for {} (suite {}), not for {release}",
                self.codename.as_deref().unwrap_or("no codename"),
                self.suite.as_deref().unwrap_or("none")
            )));
        }
        if let Some(until) = self.valid_until
            && until < now
        {
            return Err(bad(format!(
                "expired: Valid-Until is {} s in the past",
                now - until
            )));
        }
        Ok(())
    }

    /// The size and SHA-256 listed for `path` (under `dists/RELEASE/`).
    pub fn expected(&self, what: &str, path: &str) -> Result<(Digest, u64), SyncError> {
        self.files
            .get(path)
            .copied()
            .ok_or_else(|| SyncError::Signature {
                what: what.to_string(),
                reason: format!("{path} is not listed in the signed InRelease"),
            })
    }

    /// Checks `bytes` against what is listed for `path`.
    pub fn check_file(&self, what: &str, path: &str, bytes: &[u8]) -> Result<(), SyncError> {
        let (digest, size) = self.expected(what, path)?;
        if bytes.len() as u64 != size {
            return Err(SyncError::Signature {
                what: what.to_string(),
                reason: format!(
                    "{} bytes, InRelease lists {size} (a stale or tampered mirror)",
                    bytes.len()
                ),
            });
        }
        let got = Digest::of(bytes);
        if got != digest {
            return Err(SyncError::Signature {
                what: what.to_string(),
                reason: format!(
                    "SHA-256 {got}, InRelease lists {digest} (a stale or tampered mirror)"
                ),
            });
        }
        Ok(())
    }
}

/// Parses a Release date (`Sat, 11 Jul 2026 10:16:37 UTC`, RFC 2822 with a
/// zone name or offset) into seconds since the epoch.
pub fn parse_date(value: &str) -> Option<u64> {
    let normalized = match value.rsplit_once(' ') {
        Some((head, "UTC" | "GMT" | "Z")) => format!("{head} +0000"),
        _ => value.to_string(),
    };
    let t =
        time::OffsetDateTime::parse(&normalized, &time::format_description::well_known::Rfc2822)
            .ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// Writes a signed `InRelease` into `dir` (a mirror's `dists/NAME`
/// directory) listing every file under it with its size and SHA-256, signed
/// with `secret_key` (an armored OpenPGP secret key without passphrase).
/// For mirrors a node operator publishes, and for tests.
pub fn write_inrelease(dir: &Path, codename: &str, secret_key: &str) -> Result<(), SyncError> {
    let bad = |reason: String| SyncError::Signature {
        what: dir.display().to_string(),
        reason,
    };
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .map_err(|e| bad(e.to_string()))?
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir)
                && rel != Path::new("InRelease")
            {
                let bytes = std::fs::read(&p).map_err(|e| bad(e.to_string()))?;
                files.push((rel.display().to_string(), Digest::of(&bytes), bytes.len()));
            }
        }
    }
    files.sort();
    let mut text = format!("Origin: vouch\nCodename: {codename}\nSuite: {codename}\nSHA256:\n");
    for (path, digest, size) in &files {
        text += &format!(" {digest} {size} {path}\n");
    }
    let (key, _) = pgp::composed::SignedSecretKey::from_string(secret_key)
        .map_err(|e| bad(format!("the secret key: {e}")))?;
    let signed = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &text,
        &key.primary_key,
        &pgp::types::Password::empty(),
    )
    .and_then(|m| m.to_armored_string(Default::default()))
    .map_err(|e| bad(format!("signing: {e}")))?;
    std::fs::write(dir.join("InRelease"), signed).map_err(|e| bad(e.to_string()))
}

/// A detached binary signature of `data` (an Arch `.db.sig`) by
/// `secret_key` (armored, without passphrase).
pub fn sign_detached(data: &[u8], secret_key: &str) -> Result<Vec<u8>, SyncError> {
    let bad = |reason: String| SyncError::Signature {
        what: "detached signature".into(),
        reason,
    };
    let (key, _) = pgp::composed::SignedSecretKey::from_string(secret_key)
        .map_err(|e| bad(format!("the secret key: {e}")))?;
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.primary_key,
        &pgp::types::Password::empty(),
        HashAlgorithm::Sha256,
        data,
    )
    .map_err(|e| bad(e.to_string()))?;
    pgp::ser::Serialize::to_bytes(&sig).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(rel)
    }

    /// 2026-11-26, when the fixture was taken.
    const NOW: u64 = 1_795_651_200;

    fn real() -> (Keyring, String) {
        let keyring = Keyring::load(&testdata("debian/debian-archive-keyring.gpg")).unwrap();
        let text = std::fs::read_to_string(testdata("debian/bookworm_InRelease")).unwrap();
        (keyring, text)
    }

    #[test]
    fn the_real_bookworm_inrelease_verifies_against_the_real_keyring() {
        let (keyring, text) = real();
        let (signed, who) = keyring.verify_cleartext("InRelease", &text, NOW).unwrap();
        assert!(who.contains("Debian"), "{who}");
        let release = Release::parse("InRelease", &signed).unwrap();
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        release.check("InRelease", "bookworm", NOW).unwrap();
        release.check("InRelease", "oldstable", NOW).unwrap();
        let err = release.check("InRelease", "trixie", NOW).unwrap_err();
        assert!(err.to_string().contains("not for trixie"), "{err}");
        let (_, size) = release
            .expected("x", "main/binary-amd64/Packages.xz")
            .unwrap();
        assert!(size > 1_000_000);
        assert!(release.expected("x", "main/binary-amd64/Packages").is_ok());
        assert!(release.expected("x", "main/source/Sources.xz").is_ok());
        assert!(release.expected("x", "main/nonsense").is_err());
    }

    #[test]
    fn a_changed_byte_or_a_foreign_keyring_is_refused() {
        let (keyring, text) = real();
        // A mirror that changes one listed SHA-256.
        let at = text.find("SHA256:").unwrap() + 10;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        let err = keyring
            .verify_cleartext("InRelease", &tampered, NOW)
            .unwrap_err();
        assert!(err.to_string().contains("no good signature"), "{err}");
        // The genuine file against a keyring without Debian's keys.
        let (_, text) = real();
        let test_key = Keyring::load(&testdata("keys/test-archive.pub.asc")).unwrap();
        let err = test_key
            .verify_cleartext("InRelease", &text, NOW)
            .unwrap_err();
        assert!(err.to_string().contains("not verified"), "{err}");
        // Not a signed document at all.
        assert!(
            keyring
                .verify_cleartext("InRelease", "Origin: Debian\n", NOW)
                .is_err()
        );
    }

    #[test]
    fn files_must_match_their_listed_size_and_sha256() {
        let listed = "Codename: test\nSHA256:\n ".to_string()
            + &Digest::of(b"index").to_hex()
            + " 5 main/binary-amd64/Packages\n";
        let r = Release::parse("x", &listed).unwrap();
        r.check_file("x", "main/binary-amd64/Packages", b"index")
            .unwrap();
        let e = r
            .check_file("x", "main/binary-amd64/Packages", b"indey")
            .unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        let e = r
            .check_file("x", "main/binary-amd64/Packages", b"longer")
            .unwrap_err();
        assert!(e.to_string().contains("6 bytes"), "{e}");
        // Valid-Until in the past: a replayed release.
        let old = format!("Valid-Until: Sat, 11 Jul 2026 10:16:37 UTC\n{listed}");
        let r = Release::parse("x", &old).unwrap();
        assert_eq!(r.valid_until, Some(1_783_764_997));
        assert!(r.check("x", "test", NOW).is_err());
        assert!(r.check("x", "test", 1_783_000_000).is_ok());
    }

    #[test]
    fn dates_parse_as_apt_writes_them() {
        assert_eq!(
            parse_date("Sat, 11 Jul 2026 10:16:37 UTC"),
            Some(1_783_764_997)
        );
        assert_eq!(
            parse_date("Sat, 11 Jul 2026 10:16:37 +0000"),
            Some(1_783_764_997)
        );
        assert_eq!(parse_date("yesterday"), None);
    }
}
