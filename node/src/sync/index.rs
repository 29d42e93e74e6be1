//! Fetching a profile's indexes and checking them before anything is read
//! from them: Arch repository databases (and their `.db.sig` when the
//! profile names a keyring), Debian `InRelease` then `Sources` and
//! `Packages` against it. An index that fails a check is refused as a whole
//! and nothing of it is queued.

use std::time::{SystemTime, UNIX_EPOCH};

use vouch_attest::Digest;

use super::release::{Keyring, MAX_INRELEASE, MAX_SIGNATURE, Release};
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

/// Decompresses a checked index into text.
fn index_text(
    url: &str,
    bytes: &[u8],
    plain: Option<(String, Digest, u64)>,
) -> Result<String, SyncError> {
    let limit = plain
        .as_ref()
        .map_or(fetch::MAX_DECOMPRESSED, |(_, _, size)| *size);
    let t = fetch::decompress(url, bytes, limit)?;
    if let Some((path, digest, size)) = plain
        && (t.len() as u64 != size || Digest::of(&t) != digest)
    {
        return Err(SyncError::Signature {
            what: url.to_string(),
            reason: format!("decompressed, it is not the {path} that InRelease lists"),
        });
    }
    String::from_utf8(t).map_err(|_| SyncError::Format {
        what: url.to_string(),
        reason: "not UTF-8".into(),
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
                signed
                    .as_ref()
                    .and_then(|r| r.files.get(path).map(|(d, s)| (path.to_string(), *d, *s)))
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
            let sources_digest = sources_bytes.as_ref().ok().map(|b| Digest::of(b));
            let mut sources_text: Option<String> = None;
            for arch in &profile.architectures {
                let path = format!("{component}/binary-{arch}/Packages.xz");
                let url = format!("{root}/dists/{name}/{path}");
                let mut bytes = match debian_index(client, &url, &path, signed.as_ref()).await {
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
                // Decompress Packages, and Sources the first time, on two
                // threads at once: xz dominates the cost of a sync.
                let packages_job = {
                    let (url, bytes) = (url.clone(), std::mem::take(&mut bytes));
                    let plain = plain(&format!("{component}/binary-{arch}/Packages"));
                    tokio::task::spawn_blocking(move || index_text(&url, &bytes, plain))
                };
                if sources_text.is_none() {
                    let text = match &sources_bytes {
                        Ok(b) => {
                            let (u, b) = (sources_url.clone(), b.clone());
                            let plain = plain(&format!("{component}/source/Sources"));
                            tokio::task::spawn_blocking(move || index_text(&u, &b, plain))
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
                    sources_text = Some(match text {
                        Ok(t) => t,
                        Err(e) if signed.is_some() => {
                            all.refused.push(Refused {
                                entry: sources_url.clone(),
                                reason: format!("{e}; nothing of {name}/{component} is synced"),
                            });
                            break;
                        }
                        Err(e) => {
                            all.refused.push(Refused {
                                entry: sources_url.clone(),
                                reason: format!("{e}; jobs get no source files"),
                            });
                            String::new()
                        }
                    });
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
                        let mut r =
                            debian::parse(&text, sources, name, component, arch, root, filter);
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
