//! Repository sync: read a distribution's index (Arch Linux repository
//! databases, Debian `Packages`/`Sources`) and turn it into rebuild jobs,
//! one per source build, each with the artifacts it produced (subjects).
//!
//! Everything read from a mirror is untrusted: sizes are capped,
//! compression is detected by magic bytes and decompressed with a cap, and
//! a malformed or hostile entry is refused with a clear error while the
//! rest of the index still syncs.

pub mod arch;
pub mod debian;
pub mod fetch;
mod index;
pub mod profile;
pub mod release;
pub mod stanza;

use serde::{Deserialize, Serialize};
use vouch_attest::Digest;

pub use profile::{Distribution, SyncProfile};

/// One artifact a job must reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSubject {
    /// Binary package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The published file name (bare, no directories).
    pub filename: String,
    /// SHA-256 from the index.
    pub sha256: Digest,
    /// Where the mirror serves it, relative to the mirror root of its repo.
    pub path: String,
}

/// A source file of a Debian source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// File name (bare).
    pub name: String,
    /// SHA-256 from `Sources`.
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// One source build to rebuild: all artifacts of one build are checked
/// together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// `archlinux` or `debian`.
    pub distribution: String,
    /// Debian release; none for Arch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Repository (Arch) or component (Debian).
    pub component: String,
    /// Architecture of the index.
    pub architecture: String,
    /// Source name: Arch `%BASE%`, Debian `Source`.
    pub source: String,
    /// Source version.
    pub version: String,
    /// The mirror's base URL of this index (`$repo`/`$arch` substituted for
    /// Arch; the archive root for Debian).
    pub mirror: String,
    /// The artifacts.
    pub subjects: Vec<JobSubject>,
    /// Debian: the source package's directory in the archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_dir: Option<String>,
    /// Debian: the source package's files (`.dsc` first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_files: Vec<SourceFile>,
    /// Debian: where the `.buildinfo` of this build is published (from the
    /// profile's `buildinfo` template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildinfo_url: Option<String>,
}

#[cfg(test)]
impl Job {
    /// For unit tests: Debian bookworm's `hello` 2.10-3 on amd64 with one
    /// artifact per name in `names`.
    pub(crate) fn debian_hello(names: &[&str]) -> Job {
        Job {
            distribution: "debian".into(),
            release: Some("bookworm".into()),
            component: "main".into(),
            architecture: "amd64".into(),
            source: "hello".into(),
            version: "2.10-3".into(),
            mirror: "http://deb.debian.org/debian".into(),
            subjects: names
                .iter()
                .map(|name| JobSubject {
                    name: name.to_string(),
                    version: "2.10-3".into(),
                    filename: format!("{name}_2.10-3_amd64.deb"),
                    sha256: vouch_attest::Digest::of(name.as_bytes()),
                    path: format!("pool/main/h/hello/{name}_2.10-3_amd64.deb"),
                })
                .collect(),
            source_dir: Some("pool/main/h/hello".into()),
            source_files: Vec::new(),
            buildinfo_url: None,
        }
    }
}

impl Job {
    /// A stable key: distribution, release, component, architecture,
    /// source, version.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.origin(), self.source, self.version)
    }

    /// Where it is counted: distribution, release, component,
    /// architecture (the start of its key).
    pub fn origin(&self) -> String {
        origin(
            &self.distribution,
            self.release.as_deref(),
            &self.component,
            &self.architecture,
        )
    }
}

/// An origin, `distribution/release/component/architecture` (release `-`
/// when the distribution has none): what jobs and packages are counted
/// under, and the start of a job's key.
pub fn origin(
    distribution: &str,
    release: Option<&str>,
    component: &str,
    architecture: &str,
) -> String {
    format!(
        "{distribution}/{}/{component}/{architecture}",
        release.unwrap_or("-")
    )
}

/// What a sync produced: jobs, and entries refused with the reason.
#[derive(Debug, Default, Serialize)]
pub struct SyncResult {
    /// Jobs, one per source build.
    pub jobs: Vec<Job>,
    /// Entries that were refused, and why.
    pub refused: Vec<Refused>,
    /// Index URLs whose bytes were unchanged since the last sync (skipped).
    pub unchanged: Vec<String>,
    /// Job-key prefixes of the indexes that were read in full.
    pub scopes: Vec<String>,
}

/// An index entry that was not turned into a job.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// Where (tar path, stanza number, file).
    pub entry: String,
    /// Why.
    pub reason: String,
}

/// A sync failure that stops the whole index (the index itself could not be
/// read).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Fetching failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The index is larger than allowed.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The index is not in a format this node reads.
    #[error("{what}: {reason}")]
    Format {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
    /// The index is not signed as the profile requires, or does not match
    /// what its signed metadata lists.
    #[error("{what}: not verified: {reason}")]
    Signature {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Reads every index a profile names and turns it into jobs. An index that
/// cannot be fetched or read is reported in `refused`; the others still
/// sync.
pub async fn run_profile(
    client: &reqwest::Client,
    profile: &SyncProfile,
) -> Result<SyncResult, String> {
    run_profile_with(client, profile, None).await
}

/// The digests of the index files seen by the last sync of each URL: an
/// index whose bytes did not change is not parsed again.
#[derive(Debug, Default)]
pub struct IndexMemo(std::sync::Mutex<std::collections::HashMap<String, Digest>>);

impl IndexMemo {
    fn same(&self, url: &str, bytes: &[u8]) -> (bool, Digest) {
        let d = Digest::of(bytes);
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (map.get(url) == Some(&d), d)
    }
    fn remember(&self, url: &str, d: Digest) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), d);
    }
}

/// As [`run_profile`]; with a memo, indexes whose bytes are unchanged since
/// the last sync are skipped (listed in `unchanged`, their scope left out of
/// `scopes`, so nothing of theirs is queued or marked unpublished).
pub async fn run_profile_with(
    client: &reqwest::Client,
    profile: &SyncProfile,
    memo: Option<&IndexMemo>,
) -> Result<SyncResult, String> {
    profile.check()?;
    let filter = profile::Filter::new(profile)?;
    let mut all = SyncResult::default();
    // A keyring the profile needs and cannot read refuses everything.
    let keyring = match index::keyring(profile) {
        Ok(k) => k,
        Err(e) => {
            all.refused.push(Refused {
                entry: profile.mirror.clone(),
                reason: format!("{e}; nothing of this profile is synced"),
            });
            return Ok(all);
        }
    };
    let keyring = keyring.as_ref();
    match profile.distribution {
        Distribution::Archlinux => {
            index::archlinux(client, profile, keyring, &filter, memo, &mut all).await;
        }
        Distribution::Debian => {
            index::debian(client, profile, keyring, &filter, memo, &mut all).await;
        }
    }
    Ok(all)
}

/// A bare file name: no directories, not `.`/`..`, no control characters.
pub(crate) fn bare_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("file name of {} bytes", name.len()));
    }
    if name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(format!("`{}` is not a bare file name", name.escape_debug()));
    }
    if name.chars().any(char::is_control) {
        return Err("file name with a control character".to_string());
    }
    Ok(())
}
