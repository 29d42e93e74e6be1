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
pub mod profile;

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
}

impl Job {
    /// A stable key: distribution, release, component, architecture,
    /// source, version.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}/{}",
            self.distribution,
            self.release.as_deref().unwrap_or("-"),
            self.component,
            self.architecture,
            self.source,
            self.version
        )
    }
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
    match profile.distribution {
        Distribution::Archlinux => {
            for repo in &profile.repos {
                for arch in &profile.architectures {
                    let base = arch::repo_url(&profile.mirror, repo, arch);
                    let url = format!("{base}/{repo}.db");
                    let bytes = match fetch::get(client, &url, fetch::MAX_DOWNLOAD).await {
                        Ok(b) => b,
                        Err(e) => {
                            merge(&mut all, &url, Err(e));
                            continue;
                        }
                    };
                    let (same, digest) =
                        memo.map_or((false, Digest::ZERO), |m| m.same(&url, &bytes));
                    if same {
                        all.unchanged.push(url);
                        continue;
                    }
                    let r = fetch::decompress(&url, &bytes, fetch::MAX_DB)
                        .map(|tar| arch::parse_db(&tar, repo, arch, &base, &filter));
                    if r.is_ok() {
                        all.scopes.push(format!("archlinux/-/{repo}/{arch}/"));
                        if let Some(m) = memo {
                            m.remember(&url, digest);
                        }
                    }
                    merge(&mut all, &url, r);
                }
            }
        }
        Distribution::Debian => {
            let root = profile.mirror.trim_end_matches('/');
            for release in &profile.releases {
                for component in &profile.components {
                    let sources_url =
                        format!("{root}/dists/{release}/{component}/source/Sources.xz");
                    let sources_bytes = fetch::get(client, &sources_url, fetch::MAX_DOWNLOAD).await;
                    let sources_digest = sources_bytes.as_ref().ok().map(|b| Digest::of(b));
                    let mut sources_text: Option<String> = None;
                    for arch in &profile.architectures {
                        let url =
                            format!("{root}/dists/{release}/{component}/binary-{arch}/Packages.xz");
                        let mut bytes = match fetch::get(client, &url, fetch::MAX_DOWNLOAD).await {
                            Ok(b) => b,
                            Err(e) => {
                                merge(&mut all, &url, Err(e));
                                continue;
                            }
                        };
                        // Unchanged only if the Sources beside it are too.
                        let key = format!(
                            "{url}|{}",
                            sources_digest.map(|d| d.to_hex()).unwrap_or_default()
                        );
                        let (same, digest) =
                            memo.map_or((false, Digest::ZERO), |m| m.same(&key, &bytes));
                        if same {
                            all.unchanged.push(url);
                            continue;
                        }
                        // Decompress Packages, and Sources the first time, on two
                        // threads at once: xz dominates the cost of a sync.
                        let packages_job = {
                            let (url, bytes) = (url.clone(), std::mem::take(&mut bytes));
                            tokio::task::spawn_blocking(move || decompress_text(&url, &bytes))
                        };
                        if sources_text.is_none() {
                            let text = match &sources_bytes {
                                Ok(b) => {
                                    let (u, b) = (sources_url.clone(), b.clone());
                                    tokio::task::spawn_blocking(move || decompress_text(&u, &b))
                                        .await
                                        .unwrap_or_else(|e| {
                                            Err(SyncError::Format {
                                                what: sources_url.clone(),
                                                reason: e.to_string(),
                                            })
                                        })
                                }
                                Err(e) => Err(SyncError::Fetch {
                                    url: sources_url.clone(),
                                    reason: e.to_string(),
                                }),
                            };
                            sources_text = Some(text.unwrap_or_else(|e| {
                                all.refused.push(Refused {
                                    entry: sources_url.clone(),
                                    reason: format!("{e}; jobs get no source files"),
                                });
                                String::new()
                            }));
                        }
                        let sources = sources_text.as_deref().unwrap_or("");
                        let r = packages_job
                            .await
                            .unwrap_or_else(|e| {
                                Err(SyncError::Format {
                                    what: url.clone(),
                                    reason: e.to_string(),
                                })
                            })
                            .map(|text| {
                                debian::parse(
                                    &text, sources, release, component, arch, root, &filter,
                                )
                            });
                        if r.is_ok() {
                            all.scopes
                                .push(format!("debian/{release}/{component}/{arch}/"));
                            if let Some(m) = memo {
                                m.remember(&key, digest);
                            }
                        }
                        merge(&mut all, &url, r);
                    }
                }
            }
        }
    }
    Ok(all)
}

fn decompress_text(url: &str, bytes: &[u8]) -> Result<String, SyncError> {
    let t = fetch::decompress(url, bytes, fetch::MAX_DECOMPRESSED)?;
    String::from_utf8(t).map_err(|_| SyncError::Format {
        what: url.to_string(),
        reason: "not UTF-8".into(),
    })
}

fn merge(all: &mut SyncResult, url: &str, r: Result<SyncResult, SyncError>) {
    match r {
        Ok(mut one) => {
            all.jobs.append(&mut one.jobs);
            all.refused.append(&mut one.refused);
        }
        Err(e) => all.refused.push(Refused {
            entry: url.to_string(),
            reason: e.to_string(),
        }),
    }
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
