//! The verdict: what a signer says about one rebuilt artifact.
//!
//! Field order in these structs is the canonical CBOR key order; changing it
//! changes the format (see `spec/verdict.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::keys::PublicKey;

/// The only format version this implementation reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Longest text field (name, version, filename, ...), in bytes.
pub const MAX_TEXT: usize = 255;
/// Longest `source_url`, in bytes.
pub const MAX_URL: usize = 2048;

/// A signed statement about one artifact. See `spec/verdict.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Format version, always [`FORMAT_VERSION`].
    pub version: u64,
    /// Who signs.
    pub signer: PublicKey,
    /// Position in the signer's log, from 0.
    pub seq: u64,
    /// Id of the signer's verdict at `seq - 1`; all zero for `seq` 0.
    pub prev: Digest,
    /// Unix seconds when the verdict was made.
    pub issued_at: u64,
    /// The artifact.
    pub subject: Subject,
    /// What it was rebuilt from.
    pub inputs: Inputs,
    /// What came out.
    pub outcome: Outcome,
    /// Content-addressed evidence; omitted when empty.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

/// The published artifact a verdict is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// `archlinux`, `debian`, ...: lowercase letters, digits and `-`.
    pub distribution: String,
    /// Release (Debian `bookworm`); omitted for rolling distributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Repository or component (`core`, `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Architecture as the distribution spells it (`x86_64`, `amd64`, `any`).
    pub architecture: String,
    /// Binary package name.
    pub name: String,
    /// Full version as the distribution spells it (epoch, pkgrel included).
    pub version: String,
    /// File name of the published artifact, without directories.
    pub filename: String,
    /// SHA-256 of the published artifact.
    pub sha256: Digest,
}

/// What the artifact was rebuilt from, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// SHA-256 of the `.BUILDINFO`/`.buildinfo` or source package used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildinfo_sha256: Option<Digest>,
    /// Where the source came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The backend's name (`archlinux-repro`, `debian`, `exec`, `demo`).
    pub backend: String,
    /// The backend's version.
    pub backend_version: String,
}

/// The result of a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "OutcomeRepr", into = "OutcomeRepr")]
pub enum Outcome {
    /// The rebuilt artifact's sha256 equals the published one.
    Good,
    /// It built, but the rebuilt artifact differs.
    Bad {
        /// SHA-256 of the rebuilt artifact.
        rebuilt_sha256: Digest,
    },
    /// It did not build.
    Fail {
        /// Why, as a class.
        reason: FailReason,
    },
}

impl Outcome {
    /// `GOOD`, `BAD` or `FAIL`.
    pub fn result(&self) -> OutcomeKind {
        match self {
            Outcome::Good => OutcomeKind::Good,
            Outcome::Bad { .. } => OutcomeKind::Bad,
            Outcome::Fail { .. } => OutcomeKind::Fail,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Good => f.write_str("GOOD"),
            Outcome::Bad { rebuilt_sha256 } => write!(f, "BAD (rebuilt {rebuilt_sha256})"),
            Outcome::Fail { reason } => write!(f, "FAIL ({})", reason.as_str()),
        }
    }
}

/// The three results, without their details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutcomeKind {
    /// Reproduced.
    #[serde(rename = "GOOD")]
    Good,
    /// Built, differs.
    #[serde(rename = "BAD")]
    Bad,
    /// Did not build.
    #[serde(rename = "FAIL")]
    Fail,
}

impl OutcomeKind {
    /// `GOOD`, `BAD` or `FAIL`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutcomeKind::Good => "GOOD",
            OutcomeKind::Bad => "BAD",
            OutcomeKind::Fail => "FAIL",
        }
    }
}

/// Why a rebuild failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailReason {
    /// Sources or dependencies could not be fetched.
    Fetch,
    /// The build itself failed.
    Build,
    /// The build ran out of time.
    Timeout,
    /// The backend broke (not the package's fault).
    Backend,
}

impl FailReason {
    /// The wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailReason::Fetch => "fetch",
            FailReason::Build => "build",
            FailReason::Timeout => "timeout",
            FailReason::Backend => "backend",
        }
    }
}

/// The wire shape of [`Outcome`]: `result`, then the one detail it needs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeRepr {
    result: OutcomeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rebuilt_sha256: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<FailReason>,
}

impl TryFrom<OutcomeRepr> for Outcome {
    type Error = &'static str;
    fn try_from(r: OutcomeRepr) -> Result<Outcome, &'static str> {
        match (r.result, r.rebuilt_sha256, r.reason) {
            (OutcomeKind::Good, None, None) => Ok(Outcome::Good),
            (OutcomeKind::Bad, Some(rebuilt_sha256), None) => Ok(Outcome::Bad { rebuilt_sha256 }),
            (OutcomeKind::Fail, None, Some(reason)) => Ok(Outcome::Fail { reason }),
            (OutcomeKind::Good, ..) => Err("outcome GOOD carries no rebuilt_sha256 and no reason"),
            (OutcomeKind::Bad, ..) => Err("outcome BAD carries rebuilt_sha256 and no reason"),
            (OutcomeKind::Fail, ..) => Err("outcome FAIL carries reason and no rebuilt_sha256"),
        }
    }
}

impl From<Outcome> for OutcomeRepr {
    fn from(o: Outcome) -> OutcomeRepr {
        match o {
            Outcome::Good => OutcomeRepr {
                result: OutcomeKind::Good,
                rebuilt_sha256: None,
                reason: None,
            },
            Outcome::Bad { rebuilt_sha256 } => OutcomeRepr {
                result: OutcomeKind::Bad,
                rebuilt_sha256: Some(rebuilt_sha256),
                reason: None,
            },
            Outcome::Fail { reason } => OutcomeRepr {
                result: OutcomeKind::Fail,
                rebuilt_sha256: None,
                reason: Some(reason),
            },
        }
    }
}

/// Evidence blobs, addressed by the SHA-256 of their uncompressed content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The build log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_log: Option<Digest>,
    /// diffoscope's output comparing published and rebuilt artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffoscope: Option<Digest>,
}

impl Evidence {
    /// Whether no evidence is named.
    pub fn is_empty(&self) -> bool {
        self.build_log.is_none() && self.diffoscope.is_none()
    }
}

impl Verdict {
    /// Checks the rules serde cannot express: version, text limits and
    /// spelling, and `seq`/`prev` agreement. Returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!("version {} is not {FORMAT_VERSION}", self.version));
        }
        if (self.seq == 0) != self.prev.is_zero() {
            return Err(if self.seq == 0 {
                "seq 0 must have the all-zero prev".to_string()
            } else {
                format!("seq {} must name a non-zero prev", self.seq)
            });
        }
        let s = &self.subject;
        check_identifier("subject.distribution", &s.distribution)?;
        if let Some(r) = &s.release {
            check_text("subject.release", r, MAX_TEXT)?;
        }
        if let Some(c) = &s.component {
            check_text("subject.component", c, MAX_TEXT)?;
        }
        check_text("subject.architecture", &s.architecture, MAX_TEXT)?;
        check_text("subject.name", &s.name, MAX_TEXT)?;
        check_text("subject.version", &s.version, MAX_TEXT)?;
        check_text("subject.filename", &s.filename, MAX_TEXT)?;
        if s.filename.contains('/') || s.filename == "." || s.filename == ".." {
            return Err("subject.filename must be a bare file name without `/`".to_string());
        }
        if let Some(u) = &self.inputs.source_url {
            check_text("inputs.source_url", u, MAX_URL)?;
        }
        check_text("inputs.backend", &self.inputs.backend, MAX_TEXT)?;
        check_text(
            "inputs.backend_version",
            &self.inputs.backend_version,
            MAX_TEXT,
        )?;
        Ok(())
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.len() > max {
        return Err(format!("{field} is {} bytes, over {max}", value.len()));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("{field} contains a control character"));
    }
    Ok(())
}

fn check_identifier(field: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} `{}` must be 1 to 32 of a-z, 0-9 and `-`",
            value.escape_debug()
        ))
    }
}
