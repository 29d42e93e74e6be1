//! Debian indexes: `dists/<release>/<component>/binary-<arch>/Packages.xz`
//! and `.../source/Sources.xz`, deb822 stanzas read with `deb822-fast`.
//! Binaries are grouped by their source (the `Source:` field, which is
//! omitted when equal to the package name and carries `(version)` for
//! binNMUs) into one job per source build.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr as _;

use deb822_fast::Paragraph;
use vouch_attest::Digest;

use super::profile::Filter;
use super::{Job, JobSubject, Refused, SourceFile, SyncResult, bare_file_name};

/// Largest stanza read (real Sources stanzas of packages with thousands of
/// files reach 400 KiB).
pub const MAX_STANZA: usize = 4 << 20;

/// The stanzas of a deb822 file, each parsed on its own so that one bad
/// stanza does not hide the others. Yields (stanza number, result).
pub fn stanzas(text: &str) -> impl Iterator<Item = (usize, Result<Paragraph, String>)> + '_ {
    text.split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .enumerate()
        .map(|(i, s)| {
            if s.len() > MAX_STANZA {
                return (
                    i,
                    Err(format!("stanza of {} bytes, over {MAX_STANZA}", s.len())),
                );
            }
            (i, Paragraph::from_str(s).map_err(|e| format!("{e:?}")))
        })
}

/// A package or source name as Debian policy §5.6.1 allows: at least two
/// characters of `a-z0-9+-.`, starting with a letter or digit, at most 255
/// bytes. Names reach file system paths and job keys, so nothing else passes.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (2..=255).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "package name `{}` is not a Debian package name (policy §5.6.1)",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// A version as Debian policy §5.6.12 allows: `[epoch:]upstream[-revision]`,
/// the epoch digits, the upstream part starting with a digit, only
/// `A-Za-z0-9.+~-` (and the epoch's `:`), at most 255 bytes.
pub fn check_version(version: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "version `{}` is not a Debian version (policy §5.6.12)",
            version.chars().take(80).collect::<String>()
        ))
    };
    if version.is_empty() || version.len() > 255 {
        return bad();
    }
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return bad();
            }
            rest
        }
        None => version,
    };
    let ok = rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.~".contains(&b));
    if ok { Ok(()) } else { bad() }
}

/// `name` or `name (version)` from a `Source:` field.
pub fn parse_source_field(field: &str) -> (String, Option<String>) {
    let field = field.trim();
    match field.split_once('(') {
        Some((name, rest)) => (
            name.trim().to_string(),
            Some(rest.trim_end_matches(')').trim().to_string()),
        ),
        None => (field.to_string(), None),
    }
}

struct SourceEntry {
    directory: String,
    files: Vec<SourceFile>,
}

fn relative_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") || p.is_empty() {
        return Err(format!(
            "`{}` is not a safe relative path",
            p.escape_debug()
        ));
    }
    if p.chars().any(char::is_control) {
        return Err("path with a control character".into());
    }
    Ok(())
}

fn parse_sources(text: &str, refused: &mut Vec<Refused>) -> HashMap<(String, String), SourceEntry> {
    let mut out = HashMap::new();
    for (i, stanza) in stanzas(text) {
        let p = match stanza {
            Ok(p) => p,
            Err(e) => {
                refused.push(Refused {
                    entry: format!("Sources stanza {i}"),
                    reason: e,
                });
                continue;
            }
        };
        let (Some(name), Some(version), Some(dir)) =
            (p.get("Package"), p.get("Version"), p.get("Directory"))
        else {
            refused.push(Refused {
                entry: format!("Sources stanza {i}"),
                reason: "missing Package, Version or Directory".into(),
            });
            continue;
        };
        if let Err(e) = relative_path(dir)
            .and_then(|()| check_name(name))
            .and_then(|()| check_version(version))
        {
            refused.push(Refused {
                entry: format!("Sources {name} {version}"),
                reason: e,
            });
            continue;
        }
        let mut files = Vec::new();
        let mut bad = None;
        for line in p.get("Checksums-Sha256").unwrap_or("").lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.is_empty() {
                continue;
            }
            let [sha, size, fname] = parts[..] else {
                bad = Some(format!(
                    "bad Checksums-Sha256 line `{}`",
                    line.escape_debug()
                ));
                break;
            };
            let parsed = sha
                .parse::<Digest>()
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    size.parse::<u64>()
                        .map(|s| (d, s))
                        .map_err(|e| e.to_string())
                })
                .and_then(|(d, s)| bare_file_name(fname).map(|()| (d, s)));
            match parsed {
                Ok((sha256, size)) => files.push(SourceFile {
                    name: fname.to_string(),
                    sha256,
                    size,
                }),
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = bad {
            refused.push(Refused {
                entry: format!("Sources {name} {version}"),
                reason: e,
            });
            continue;
        }
        // The .dsc first.
        files.sort_by_key(|f| !f.name.ends_with(".dsc"));
        out.insert(
            (name.to_string(), version.to_string()),
            SourceEntry {
                directory: dir.to_string(),
                files,
            },
        );
    }
    out
}

/// Reads decompressed `Packages` and `Sources` texts into jobs.
pub fn parse(
    packages: &str,
    sources: &str,
    release: &str,
    component: &str,
    arch: &str,
    mirror: &str,
    filter: &Filter,
) -> SyncResult {
    let mut result = SyncResult::default();
    let sources = parse_sources(sources, &mut result.refused);
    let mut jobs: BTreeMap<(String, String), Job> = BTreeMap::new();
    for (i, stanza) in stanzas(packages) {
        let p = match stanza {
            Ok(p) => p,
            Err(e) => {
                result.refused.push(Refused {
                    entry: format!("Packages stanza {i}"),
                    reason: e,
                });
                continue;
            }
        };
        let (Some(name), Some(version), Some(path), Some(sha)) = (
            p.get("Package"),
            p.get("Version"),
            p.get("Filename"),
            p.get("SHA256"),
        ) else {
            result.refused.push(Refused {
                entry: format!("Packages stanza {i}"),
                reason: "missing Package, Version, Filename or SHA256".into(),
            });
            continue;
        };
        let entry = format!("Packages {name} {version}");
        let checked = check_name(name)
            .and_then(|()| check_version(version))
            .and_then(|()| relative_path(path))
            .and_then(|()| {
                let base = path.rsplit('/').next().unwrap_or(path);
                bare_file_name(base).map(|()| base.to_string())
            })
            .and_then(|base| {
                sha.trim()
                    .parse::<Digest>()
                    .map(|d| (base, d))
                    .map_err(|e| format!("SHA256: {e}"))
            });
        let (filename, sha256) = match checked {
            Ok(x) => x,
            Err(reason) => {
                result.refused.push(Refused { entry, reason });
                continue;
            }
        };
        if !filter.wants(name, p.get("Maintainer").unwrap_or("")) {
            continue;
        }
        let (source, source_version) = match p.get("Source") {
            Some(s) => {
                let (n, v) = parse_source_field(s);
                (n, v.unwrap_or_else(|| version.to_string()))
            }
            None => (name.to_string(), version.to_string()),
        };
        // Source and its version become a job key and, in the debian
        // backend, path components: refuse anything policy does not allow.
        if let Err(reason) = check_name(&source).and_then(|()| check_version(&source_version)) {
            result.refused.push(Refused { entry, reason });
            continue;
        }
        let src = sources.get(&(source.clone(), source_version.clone()));
        let job = jobs
            .entry((source.clone(), source_version.clone()))
            .or_insert_with(|| Job {
                distribution: "debian".into(),
                release: Some(release.to_string()),
                component: component.to_string(),
                architecture: arch.to_string(),
                source: source.clone(),
                version: source_version.clone(),
                mirror: mirror.to_string(),
                subjects: Vec::new(),
                source_dir: src.map(|s| s.directory.clone()),
                source_files: src.map(|s| s.files.clone()).unwrap_or_default(),
                buildinfo_url: None,
            });
        job.subjects.push(JobSubject {
            name: name.to_string(),
            version: version.to_string(),
            filename,
            sha256,
            path: path.to_string(),
        });
    }
    result.jobs = jobs.into_values().collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8.7: a Source or Version that would leave the work directory
    /// or make two jobs share a key is refused, entry by entry.
    #[test]
    fn hostile_names_and_versions_are_refused() {
        for (source, version) in [
            ("../../etc", "1.0-1"),
            ("hello/evil", "1.0-1"),
            ("hello", "1.0/../../x"),
            ("hello", "../1"),
            ("Hello", "1.0"),
            ("h", "1.0"),
            ("hello", "a1.0"),
            ("hello", "x:1.0"),
        ] {
            let packages = format!(
                "Package: hello\nVersion: 2.10-3\nSource: {source} ({version})\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSHA256: {}\n",
                "ab".repeat(32)
            );
            let r = parse(
                &packages,
                "",
                "bookworm",
                "main",
                "amd64",
                "http://m",
                &Filter::all(),
            );
            assert!(r.jobs.is_empty(), "{source} {version}: {:?}", r.jobs);
            assert_eq!(r.refused.len(), 1, "{source} {version}");
        }
        for v in [
            "2.10-3",
            "1:2.10-3+deb12u1",
            "0~rc1",
            "1.2.3+dfsg-1~bpo12+1",
        ] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        for n in ["hello", "g++-12", "libc6.1", "0ad"] {
            assert!(check_name(n).is_ok(), "{n}");
        }
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../testdata/debian/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn the_real_hello_stanzas_make_one_job() {
        let r = parse(
            &fixture("Packages_hello.stanza"),
            &fixture("Sources_hello.stanza"),
            "bookworm",
            "main",
            "amd64",
            "https://deb.debian.org/debian",
            &Filter::all(),
        );
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.jobs.len(), 1);
        let j = &r.jobs[0];
        assert_eq!((j.source.as_str(), j.version.as_str()), ("hello", "2.10-3"));
        assert_eq!(j.subjects[0].filename, "hello_2.10-3_amd64.deb");
        assert_eq!(j.source_dir.as_deref(), Some("pool/main/h/hello"));
        assert!(j.source_files[0].name.ends_with(".dsc"));
    }

    #[test]
    fn source_fields() {
        assert_eq!(parse_source_field("glibc"), ("glibc".into(), None));
        assert_eq!(
            parse_source_field("glibc (2.36-9)"),
            ("glibc".into(), Some("2.36-9".into()))
        );
    }
}
