//! Debian: installed packages from `var/lib/dpkg/status`, their artifacts'
//! sha256 from the apt lists' `Packages` files (as apt stores them: plain
//! or compressed), else by hashing the `.deb` in `var/cache/apt/archives`.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;

use deb822_fast::Paragraph;
use vouch_attest::Digest;

use super::{Installed, Inventory, decompress, hash_file, under};

/// Largest status file read.
const MAX_STATUS: u64 = 256 << 20;
/// Largest `Packages` file read (decompressed).
const MAX_PACKAGES: u64 = 512 << 20;
/// Largest stanza.
const MAX_STANZA: usize = 1 << 20;

fn stanzas(text: &str) -> impl Iterator<Item = Result<Paragraph, String>> + '_ {
    text.split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            if s.len() > MAX_STANZA {
                return Err(format!("a stanza of {} bytes", s.len()));
            }
            Paragraph::from_str(s).map_err(|e| format!("{e:?}"))
        })
}

/// `(name, version, architecture)` → sha256, from every `Packages` list.
pub(crate) fn index(
    root: &Path,
    skipped: &mut Vec<String>,
) -> HashMap<(String, String, String), (Digest, String)> {
    let mut out = HashMap::new();
    let lists = under(root, "/var/lib/apt/lists");
    let Ok(entries) = std::fs::read_dir(&lists) else {
        return out;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                let base = n
                    .trim_end_matches(".lz4")
                    .trim_end_matches(".gz")
                    .trim_end_matches(".xz")
                    .trim_end_matches(".zst");
                base.ends_with("_Packages")
            })
        })
        .collect();
    files.sort();
    for f in files {
        let bytes = match decompress::read(&f, MAX_PACKAGES) {
            Ok(b) => b,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        for p in stanzas(&text) {
            let Ok(p) = p else { continue };
            if let (Some(n), Some(v), Some(a), Some(sha)) = (
                p.get("Package"),
                p.get("Version"),
                p.get("Architecture"),
                p.get("SHA256"),
            ) && let Ok(d) = sha.trim().parse::<Digest>()
            {
                out.entry((n.to_string(), v.to_string(), a.to_string()))
                    .or_insert((d, f.display().to_string()));
            }
        }
    }
    out
}

/// Adds the packages dpkg has installed under `root`.
pub(crate) fn read(root: &Path, inv: &mut Inventory) {
    let status = under(root, "/var/lib/dpkg/status");
    let bytes = match decompress::read(&status, MAX_STATUS) {
        Ok(b) => b,
        Err(e) => {
            inv.skipped.push(e);
            return;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let index = index(root, &mut inv.skipped);
    let archives = under(root, "/var/cache/apt/archives");
    for (i, p) in stanzas(&text).enumerate() {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                inv.skipped
                    .push(format!("{} stanza {i}: {e}", status.display()));
                continue;
            }
        };
        let installed = p
            .get("Status")
            .is_some_and(|s| s.split_whitespace().last() == Some("installed"));
        let (Some(name), Some(version), Some(arch)) =
            (p.get("Package"), p.get("Version"), p.get("Architecture"))
        else {
            continue;
        };
        if !installed {
            continue;
        }
        let key = (name.to_string(), version.to_string(), arch.to_string());
        let (sha256, hash_from) = match index.get(&key) {
            Some((d, from)) => (Some(*d), Some(from.clone())),
            None => {
                let deb =
                    archives.join(format!("{name}_{}_{arch}.deb", version.replace(':', "%3a")));
                match hash_file(&deb) {
                    Ok(d) => (Some(d), Some(deb.display().to_string())),
                    Err(_) => (None, None),
                }
            }
        };
        inv.packages.push(Installed {
            distribution: "debian",
            name: name.to_string(),
            version: version.to_string(),
            architecture: arch.to_string(),
            sha256,
            hash_from,
        });
    }
}
