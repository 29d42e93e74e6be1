//! Arch Linux: installed packages from `var/lib/pacman/local/*/desc`,
//! their sha256 from the sync databases (`var/lib/pacman/sync/*.db`) for the
//! same version, else by hashing the package file in a cache directory
//! (`var/cache/pacman/pkg` and every `CacheDir` of `etc/pacman.conf`).
//!
//! `desc` entries are read by section (`%NAME%` and the lines after it):
//! only the sections needed here, and an entry missing one is skipped.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use vouch_attest::Digest;

use super::{Installed, Inventory, decompress, hash_file, under};

/// Largest `desc` read.
const MAX_DESC: u64 = 1 << 20;
/// Largest sync database read (decompressed).
const MAX_DB: u64 = 1 << 30;

/// The sections of a `desc` file.
pub(crate) fn sections(text: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.len() > 2 && line.starts_with('%') && line.ends_with('%') {
            current = Some(line.trim_matches('%').to_string());
            out.entry(line.trim_matches('%').to_string()).or_default();
        } else if line.is_empty() {
            current = None;
        } else if let Some(c) = &current {
            out.entry(c.clone()).or_default().push(line.to_string());
        }
    }
    out
}

fn first<'a>(s: &'a HashMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    s.get(key).and_then(|v| v.first()).map(String::as_str)
}

/// A package in a sync database.
#[derive(Debug, Clone)]
pub(crate) struct SyncEntry {
    pub(crate) repo: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) arch: String,
    pub(crate) filename: String,
    pub(crate) sha256: Digest,
}

/// The repositories of `etc/pacman.conf` in order, and its `CacheDir`s.
pub(crate) fn conf(root: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let text = std::fs::read(under(root, "/etc/pacman.conf"))
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(1 << 20)]).into_owned())
        .unwrap_or_default();
    let mut repos = Vec::new();
    let mut caches = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(r) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if r != "options" {
                repos.push(r.to_string());
            }
        } else if let Some((k, v)) = line.split_once('=')
            && k.trim() == "CacheDir"
        {
            caches.extend(v.split_whitespace().map(|d| under(root, d)));
        }
    }
    caches.push(under(root, "/var/cache/pacman/pkg"));
    caches.dedup();
    (repos, caches)
}

/// Every package of every sync database, in `order` (the repositories of
/// `pacman.conf`, see [`conf`]), then the other databases by name.
pub(crate) fn sync_entries(
    root: &Path,
    order: &[String],
    skipped: &mut Vec<String>,
) -> Vec<SyncEntry> {
    let dir = under(root, "/var/lib/pacman/sync");
    let mut dbs: Vec<(usize, String, PathBuf)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let p = e.path();
                    let repo = p.file_name()?.to_str()?.strip_suffix(".db")?.to_string();
                    let rank = order.iter().position(|r| *r == repo).unwrap_or(usize::MAX);
                    Some((rank, repo, p))
                })
                .collect()
        })
        .unwrap_or_default();
    dbs.sort();
    let mut out = Vec::new();
    for (_, repo, path) in dbs {
        let bytes = match decompress::read(&path, MAX_DB) {
            Ok(b) => b,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        let mut archive = tar::Archive::new(bytes.as_slice());
        let Ok(entries) = archive.entries() else {
            skipped.push(format!("{}: not a database", path.display()));
            continue;
        };
        for entry in entries {
            let Ok(mut entry) = entry else {
                skipped.push(format!("{}: a broken entry", path.display()));
                break;
            };
            let is_desc = entry
                .path()
                .ok()
                .is_some_and(|p| p.file_name().is_some_and(|n| n == "desc"));
            if !is_desc || entry.size() > MAX_DESC {
                continue;
            }
            let mut text = String::new();
            if entry.read_to_string(&mut text).is_err() {
                continue;
            }
            let s = sections(&text);
            let sha = first(&s, "SHA256SUM").and_then(|h| h.parse::<Digest>().ok());
            match (
                first(&s, "NAME"),
                first(&s, "VERSION"),
                first(&s, "FILENAME"),
                sha,
            ) {
                (Some(n), Some(v), Some(f), Some(sha256)) if !f.contains('/') => {
                    out.push(SyncEntry {
                        repo: repo.clone(),
                        name: n.to_string(),
                        version: v.to_string(),
                        arch: first(&s, "ARCH").unwrap_or("any").to_string(),
                        filename: f.to_string(),
                        sha256,
                    })
                }
                _ => skipped.push(format!(
                    "{}: an entry without NAME, VERSION, FILENAME or SHA256SUM",
                    path.display()
                )),
            }
        }
    }
    out
}

/// Adds the packages pacman has installed under `root`.
pub(crate) fn read(root: &Path, inv: &mut Inventory) {
    let local = under(root, "/var/lib/pacman/local");
    let (order, caches) = conf(root);
    let sync = sync_entries(root, &order, &mut inv.skipped);
    let mut by_version: HashMap<(&str, &str), &SyncEntry> = HashMap::new();
    for e in &sync {
        by_version.entry((&e.name, &e.version)).or_insert(e);
    }
    let Ok(entries) = std::fs::read_dir(&local) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let desc = dir.join("desc");
        let text = match std::fs::File::open(&desc) {
            Ok(f) => {
                let mut t = String::new();
                if f.take(MAX_DESC).read_to_string(&mut t).is_err() {
                    inv.skipped.push(format!("{}: not text", desc.display()));
                    continue;
                }
                t
            }
            Err(_) => continue,
        };
        let s = sections(&text);
        let (Some(name), Some(version)) = (first(&s, "NAME"), first(&s, "VERSION")) else {
            inv.skipped
                .push(format!("{}: no NAME or VERSION", desc.display()));
            continue;
        };
        let arch = first(&s, "ARCH").unwrap_or("any").to_string();
        let (sha256, hash_from) = match by_version.get(&(name, version)) {
            Some(e) => (Some(e.sha256), Some(format!("sync database {}", e.repo))),
            None => match find_in_cache(&caches, name, version, &arch, None) {
                Some((p, d)) => (Some(d), Some(p.display().to_string())),
                None => (None, None),
            },
        };
        inv.packages.push(Installed {
            distribution: "archlinux",
            name: name.to_string(),
            version: version.to_string(),
            architecture: arch,
            sha256,
            hash_from,
        });
    }
}

/// The package file of `name`-`version` in a cache directory, and its
/// sha256: `filename` when known, else `NAME-VERSION-ARCH.pkg.tar*`.
pub(crate) fn find_in_cache(
    caches: &[PathBuf],
    name: &str,
    version: &str,
    arch: &str,
    filename: Option<&str>,
) -> Option<(PathBuf, Digest)> {
    let prefix = format!("{name}-{version}-{arch}.pkg.tar");
    for dir in caches {
        let candidates: Vec<PathBuf> = match filename {
            Some(f) => vec![dir.join(f)],
            None => std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with(&prefix) && !n.ends_with(".sig"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        for c in candidates {
            if let Ok(d) = hash_file(&c) {
                return Some((c, d));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_sections_are_read_from_the_real_fixtures() {
        let text = include_str!("../../../testdata/arch/local_filesystem-2025.10.12-1.desc");
        let s = sections(text);
        assert_eq!(first(&s, "NAME"), Some("filesystem"));
        assert_eq!(first(&s, "VERSION"), Some("2025.10.12-1"));
        let text = include_str!("../../../testdata/arch/repo-db_pacman-5.2.2-1.desc");
        let s = sections(text);
        assert_eq!(
            first(&s, "FILENAME"),
            Some("pacman-5.2.2-1-x86_64.pkg.tar.zst")
        );
        assert!(first(&s, "SHA256SUM").unwrap().parse::<Digest>().is_ok());
    }
}
