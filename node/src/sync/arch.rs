//! Arch Linux repository databases (`<repo>.db`): a compressed tar of
//! `<name>-<version>/desc` entries, parsed with Arch's own `alpm-repo-db`.
//! Split packages are grouped by `%BASE%` into one job per build.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Component;
use std::str::FromStr as _;

use alpm_repo_db::desc::RepoDescFile;
use vouch_attest::Digest;

use super::profile::Filter;
use super::{Job, JobSubject, Refused, SyncResult, bare_file_name};

/// Largest `desc` entry read.
pub const MAX_DESC: u64 = 1 << 20;
/// Most entries read from one database.
pub const MAX_ENTRIES: usize = 200_000;

/// The fields of a `desc` entry that a job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    /// `%NAME%`
    pub name: String,
    /// `%BASE%`
    pub base: String,
    /// `%VERSION%`
    pub version: String,
    /// `%FILENAME%`
    pub filename: String,
    /// `%SHA256SUM%`
    pub sha256: Digest,
    /// `%ARCH%`
    pub arch: String,
    /// `%PACKAGER%`
    pub packager: String,
}

/// Parses one `desc` entry.
pub fn parse_desc(text: &str) -> Result<Desc, String> {
    macro_rules! fields {
        ($d:expr) => {
            (
                $d.name.to_string(),
                $d.base.to_string(),
                $d.version.to_string(),
                $d.file_name.to_string(),
                $d.sha256_checksum.to_string(),
                $d.arch.to_string(),
                $d.packager.to_string(),
            )
        };
    }
    let (name, base, version, filename, sha, arch, packager) =
        match RepoDescFile::from_str(text).map_err(|e| e.to_string())? {
            RepoDescFile::V1(d) => fields!(d),
            RepoDescFile::V2(d) => fields!(d),
        };
    bare_file_name(&filename)?;
    let sha256: Digest = sha.parse().map_err(|e| format!("%SHA256SUM%: {e}"))?;
    Ok(Desc {
        name,
        base,
        version,
        filename,
        sha256,
        arch,
        packager,
    })
}

/// Reads a decompressed repository database (a tar archive).
pub fn parse_db(
    tar_bytes: &[u8],
    repo: &str,
    arch: &str,
    mirror: &str,
    filter: &Filter,
) -> SyncResult {
    let mut result = SyncResult::default();
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            result.refused.push(Refused {
                entry: format!("{repo}.db"),
                reason: format!("not a tar archive: {e}"),
            });
            return result;
        }
    };
    // (base, version) -> job
    let mut jobs: BTreeMap<(String, String), Job> = BTreeMap::new();
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            result.refused.push(Refused {
                entry: format!("{repo}.db"),
                reason: format!("more than {MAX_ENTRIES} entries; the rest is ignored"),
            });
            break;
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                result.refused.push(Refused {
                    entry: format!("{repo}.db entry {i}"),
                    reason: format!("unreadable tar entry: {e}"),
                });
                break; // a broken tar stream cannot be resynchronized
            }
        };
        let path = match entry.path() {
            Ok(p) => p.into_owned(),
            Err(e) => {
                result.refused.push(Refused {
                    entry: format!("{repo}.db entry {i}"),
                    reason: format!("bad path: {e}"),
                });
                continue;
            }
        };
        let shown = path.display().to_string();
        let components: Vec<Component> = path.components().collect();
        let safe = components.iter().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            result.refused.push(Refused {
                entry: shown,
                reason: "path traversal or absolute path in the database".into(),
            });
            continue;
        }
        let is_desc = components.len() == 2 && path.file_name().is_some_and(|n| n == "desc");
        if !is_desc {
            continue; // directories, `files` entries
        }
        if entry.size() > MAX_DESC {
            result.refused.push(Refused {
                entry: shown,
                reason: format!(
                    "{} bytes, over the limit of {MAX_DESC} for a desc entry",
                    entry.size()
                ),
            });
            continue;
        }
        let mut text = String::new();
        if let Err(e) = (&mut entry).take(MAX_DESC).read_to_string(&mut text) {
            result.refused.push(Refused {
                entry: shown,
                reason: format!("unreadable: {e}"),
            });
            continue;
        }
        let desc = match parse_desc(&text) {
            Ok(d) => d,
            Err(e) => {
                result.refused.push(Refused {
                    entry: shown,
                    reason: format!("malformed desc: {e}"),
                });
                continue;
            }
        };
        if !filter.wants(&desc.name, &desc.packager) {
            continue;
        }
        let job = jobs
            .entry((desc.base.clone(), desc.version.clone()))
            .or_insert_with(|| Job {
                distribution: "archlinux".into(),
                release: None,
                component: repo.to_string(),
                architecture: arch.to_string(),
                source: desc.base.clone(),
                version: desc.version.clone(),
                mirror: mirror.to_string(),
                subjects: Vec::new(),
                source_dir: None,
                source_files: Vec::new(),
                buildinfo_url: None,
            });
        job.subjects.push(JobSubject {
            path: desc.filename.clone(),
            name: desc.name,
            version: desc.version,
            filename: desc.filename,
            sha256: desc.sha256,
        });
    }
    result.jobs = jobs.into_values().collect();
    result
}

/// The mirror URL of a repository: `$repo` and `$arch` substituted.
pub fn repo_url(mirror: &str, repo: &str, arch: &str) -> String {
    mirror
        .replace("$repo", repo)
        .replace("$arch", arch)
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_fixture() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/arch/repo-db_pacman-5.2.2-1.desc"
        ))
        .unwrap();
        let d = parse_desc(&text).unwrap();
        assert_eq!(d.name, "pacman");
        assert_eq!(d.base, "pacman");
        assert_eq!(d.version, "5.2.2-1");
        assert_eq!(d.filename, "pacman-5.2.2-1-x86_64.pkg.tar.zst");
        assert_eq!(d.arch, "x86_64");
    }
}
