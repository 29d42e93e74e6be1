//! Fetching a profile's indexes and checking them before anything is read
//! from them: Arch repository databases (and their `.db.sig` when the
//! profile names a keyring), Debian `InRelease` then `Sources` and
//! `Packages` against it. An index that fails a check is refused as a whole
//! and nothing of it is queued.

use std::time::{SystemTime, UNIX_EPOCH};

use vouch_attest::Digest;

use super::profile::Filter;
use super::release::{Keyring, MAX_INRELEASE, MAX_SIGNATURE, Release};
use super::stanza::{Piece, StanzaChunks};
use super::{IndexMemo, Refused, SyncError, SyncProfile, SyncResult, arch, debian, fetch, profile};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The profile's keyring, if it verifies signatures; an error when it
/// should and cannot be read.
pub(super) fn keyring(profile: &SyncProfile) -> Result<Option<Keyring>, SyncError> {
    match profile.keyring_path() {
        Some(path) => Keyring::load(&path).map(Some).map_err(|e| match e {
            SyncError::Signature { what, reason } => SyncError::Signature {
                what: format!("sync profile `{}`", profile.name),
                reason: format!("keyring {what}: {reason}"),
            },
            other => other,
        }),
        None => Ok(None),
    }
}

/// Arch Linux: one database per repository and architecture.
pub(super) async fn archlinux(
    client: &reqwest::Client,
    profile: &SyncProfile,
    keyring: Option<&Keyring>,
    filter: &profile::Filter,
    memo: Option<&IndexMemo>,
    all: &mut SyncResult,
) {
    for repo in &profile.repos {
        for arch in &profile.architectures {
            let base = arch::repo_url(&profile.mirror, repo, arch);
            let url = format!("{base}/{repo}.db");
            let bytes = match fetch::get(client, &url, fetch::MAX_DOWNLOAD).await {
                Ok(b) => b,
                Err(e) => {
                    merge(all, &url, Err(e));
                    continue;
                }
            };
            if let Some(k) = keyring {
                let sig_url = format!("{url}.sig");
                let checked = match fetch::get(client, &sig_url, MAX_SIGNATURE).await {
                    Ok(sig) => k.verify_detached(&url, &bytes, &sig, now()).map(|_| ()),
                    Err(e) => Err(SyncError::Signature {
                        what: url.clone(),
                        reason: format!("no signature: {e}"),
                    }),
                };
                if let Err(e) = checked {
                    merge(all, &url, Err(e));
                    continue;
                }
            }
            let (same, digest) = memo.map_or((false, Digest::ZERO), |m| m.same(&url, &bytes));
            if same {
                all.unchanged.push(url);
                continue;
            }
            let r = fetch::decompress(&url, &bytes, fetch::MAX_DB)
                .map(|tar| arch::parse_db(&tar, repo, arch, &base, filter));
            if r.is_ok() {
                all.scopes.push(format!("archlinux/-/{repo}/{arch}/"));
                if let Some(m) = memo {
                    m.remember(&url, digest);
                }
            }
            merge(all, &url, r);
        }
    }
}

/// Fetches and verifies `dists/RELEASE/InRelease`.
async fn release(
    client: &reqwest::Client,
    root: &str,
    name: &str,
    keyring: &Keyring,
) -> Result<Release, SyncError> {
    let url = format!("{root}/dists/{name}/InRelease");
    let bytes = fetch::get(client, &url, MAX_INRELEASE).await?;
    let text = String::from_utf8(bytes).map_err(|_| SyncError::Format {
        what: url.clone(),
        reason: "not UTF-8".into(),
    })?;
    let (signed, who) = keyring.verify_cleartext(&url, &text, now())?;
    let release = Release::parse(&url, &signed)?;
    release.check(&url, name, now())?;
    tracing::debug!(%url, signer = %who, "InRelease verified");
    Ok(release)
}

/// An index file of a Debian release: fetched, checked against the signed
/// `InRelease` (when there is one), decompressed within the size
/// `InRelease` lists for the plain file (or the general cap), and checked
/// again when the plain file is listed.
async fn debian_index(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    signed: Option<&Release>,
) -> Result<Vec<u8>, SyncError> {
    let bytes = fetch::get(client, url, fetch::MAX_DOWNLOAD).await?;
    if let Some(r) = signed {
        r.check_file(url, path, &bytes)?;
    }
    Ok(bytes)
}

/// Decompresses a checked index and hands its text to `feed` a piece of
/// whole stanzas at a time while it decompresses, within the size
/// `InRelease` lists for the plain file (or the general cap), and checked
/// to have exactly that size at the end: what `feed` read is only used
/// when this returns `Ok`. Its digest is not computed again: the
/// compressed file was checked against `InRelease`, and it determines
/// the plain text.
fn read_index(
    url: &str,
    bytes: &[u8],
    check: fetch::Check,
    plain: Option<Plain>,
    mut feed: impl FnMut(Piece<'_>),
) -> Result<(), SyncError> {
    let limit = plain.as_ref().map_or(fetch::MAX_DECOMPRESSED, |p| p.size);
    let not_utf8 = |_| SyncError::Format {
        what: url.to_string(),
        reason: "not UTF-8".into(),
    };
    let started = std::time::Instant::now();
    let mut chunks = StanzaChunks::default();
    let len = fetch::decompress_each(url, bytes, check, limit, |piece| {
        chunks.push(piece, &mut feed).map_err(not_utf8)
    })?;
    chunks.finish(&mut feed).map_err(not_utf8)?;
    tracing::debug!(
        %url,
        bytes = len,
        seconds = started.elapsed().as_secs_f64(),
        "index decompressed and read"
    );
    if let Some(p) = plain
        && len != p.size
    {
        return Err(SyncError::Signature {
            what: url.to_string(),
            reason: format!(
                "decompressed, it is not the {} that InRelease lists",
                p.path
            ),
        });
    }
    Ok(())
}

/// A plain index file as `InRelease` lists it.
struct Plain {
    path: String,
    size: u64,
}

/// What a Debian index read in the background gives.
type Read<T> = Result<T, SyncError>;

/// A fetched and checked index file to read, or why it could not be
/// fetched.
struct IndexFile {
    url: String,
    bytes: Result<Vec<u8>, String>,
    plain: Option<Plain>,
    /// Whether its bytes were checked against a verified `InRelease`.
    check: fetch::Check,
}

impl IndexFile {
    fn read(self, feed: impl FnMut(Piece<'_>)) -> Result<(), SyncError> {
        let bytes = self.bytes.map_err(|reason| SyncError::Fetch {
            url: self.url.clone(),
            reason,
        })?;
        read_index(&self.url, &bytes, self.check, self.plain, feed)
    }
}

/// Reads `Packages`, and `Sources` when given (the first architecture of a
/// component), each decompressed and parsed on its own thread: xz
/// dominates the cost of a sync, and parsing keeps pace with it.
fn read_debian(
    packages: IndexFile,
    sources: Option<IndexFile>,
    filter: Filter,
    origin: debian::Origin,
) -> (Read<debian::Builds>, Option<Read<debian::SourcesIndex>>) {
    std::thread::scope(|scope| {
        let sources = sources.map(|file| {
            scope.spawn(move || {
                let mut index = debian::SourcesIndex::default();
                file.read(|p| index.feed(p)).map(|()| index)
            })
        });
        let url = packages.url.clone();
        let mut index = debian::PackagesIndex::new(filter);
        let packages = packages
            .read(|p| index.feed(p))
            .map(|()| index.into_builds(&origin));
        let sources = sources.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(SyncError::Format {
                    what: url,
                    reason: "the Sources reader stopped".into(),
                })
            })
        });
        (packages, sources)
    })
}

/// Debian: per release, `InRelease`; per component, `Sources`; per
/// architecture, `Packages`.
pub(super) async fn debian(
    client: &reqwest::Client,
    profile: &SyncProfile,
    keyring: Option<&Keyring>,
    filter: &profile::Filter,
    memo: Option<&IndexMemo>,
    all: &mut SyncResult,
) {
    let root = profile.mirror.trim_end_matches('/');
    for name in &profile.releases {
        let signed = match keyring {
            Some(k) => match release(client, root, name, k).await {
                Ok(r) => Some(r),
                Err(e) => {
                    all.refused.push(Refused {
                        entry: format!("{root}/dists/{name}/InRelease"),
                        reason: format!("{e}; nothing of {name} is synced"),
                    });
                    continue;
                }
            },
            None => None,
        };
        for component in &profile.components {
            let plain = |path: &str| {
                signed.as_ref().and_then(|r| {
                    r.files.get(path).map(|(_, size)| Plain {
                        path: path.to_string(),
                        size: *size,
                    })
                })
            };
            let check = if signed.is_some() {
                fetch::Check::Signed
            } else {
                fetch::Check::Container
            };
            let sources_path = format!("{component}/source/Sources.xz");
            let sources_url = format!("{root}/dists/{name}/{sources_path}");
            let sources_bytes =
                debian_index(client, &sources_url, &sources_path, signed.as_ref()).await;
            if signed.is_some()
                && let Err(e) = &sources_bytes
            {
                // Jobs without verified source files are not queued.
                all.refused.push(Refused {
                    entry: sources_url.clone(),
                    reason: format!("{e}; nothing of {name}/{component} is synced"),
                });
                continue;
            }
            // Only a memo needs it.
            let sources_digest = sources_bytes
                .as_ref()
                .ok()
                .filter(|_| memo.is_some())
                .map(|b| Digest::of(b));
            let mut sources_bytes = Some(sources_bytes.map_err(|e| e.to_string()));
            let mut sources: Option<debian::SourcesIndex> = None;
            for arch in &profile.architectures {
                let path = format!("{component}/binary-{arch}/Packages.xz");
                let url = format!("{root}/dists/{name}/{path}");
                let bytes = match debian_index(client, &url, &path, signed.as_ref()).await {
                    Ok(b) => b,
                    Err(e) => {
                        merge(all, &url, Err(e));
                        continue;
                    }
                };
                // Unchanged only if the Sources beside it are too.
                let key = format!(
                    "{url}|{}",
                    sources_digest.map(|d| d.to_hex()).unwrap_or_default()
                );
                let (same, digest) = memo.map_or((false, Digest::ZERO), |m| m.same(&key, &bytes));
                if same {
                    all.unchanged.push(url);
                    continue;
                }
                let packages = IndexFile {
                    url: url.clone(),
                    bytes: Ok(bytes),
                    plain: plain(&format!("{component}/binary-{arch}/Packages")),
                    check,
                };
                let sources_job = sources_bytes.take().map(|bytes| IndexFile {
                    url: sources_url.clone(),
                    bytes,
                    plain: plain(&format!("{component}/source/Sources")),
                    check,
                });
                let filter = filter.clone();
                let origin = debian::Origin {
                    release: name.clone(),
                    component: component.clone(),
                    architecture: arch.clone(),
                    mirror: root.to_string(),
                };
                let (packages, read_sources) = tokio::task::spawn_blocking(move || {
                    read_debian(packages, sources_job, filter, origin)
                })
                .await
                .unwrap_or_else(|e| {
                    let stopped = || SyncError::Format {
                        what: url.clone(),
                        reason: format!("the index reader stopped: {e}"),
                    };
                    (Err(stopped()), Some(Err(stopped())))
                });
                match read_sources {
                    Some(Ok(index)) => sources = Some(index),
                    Some(Err(e)) if signed.is_some() => {
                        all.refused.push(Refused {
                            entry: sources_url.clone(),
                            reason: format!("{e}; nothing of {name}/{component} is synced"),
                        });
                        break;
                    }
                    Some(Err(e)) => {
                        all.refused.push(Refused {
                            entry: sources_url.clone(),
                            reason: format!("{e}; jobs get no source files"),
                        });
                        sources = Some(debian::SourcesIndex::default());
                    }
                    None => {}
                }
                let sources = sources.get_or_insert_with(debian::SourcesIndex::default);
                let r = packages.map(|builds| {
                    let mut r = builds.with_sources(sources);
                    for job in &mut r.jobs {
                        job.buildinfo_url = profile.buildinfo_url(job);
                    }
                    r
                });
                if r.is_ok() {
                    all.scopes
                        .push(format!("debian/{name}/{component}/{arch}/"));
                    if let Some(m) = memo {
                        m.remember(&key, digest);
                    }
                }
                merge(all, &url, r);
            }
        }
    }
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
