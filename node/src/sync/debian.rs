//! Debian indexes: `dists/<release>/<component>/binary-<arch>/Packages.xz`
//! and `.../source/Sources.xz`, deb822 stanzas read with `deb822-fast`.
//! Binaries are grouped by their source (the `Source:` field, which is
//! omitted when equal to the package name and carries `(version)` for
//! binNMUs) into one job per source build.

use std::collections::HashMap;

use vouch_attest::Digest;

use super::profile::Filter;
use super::stanza::{Piece, read_stanzas, single_line, value_lines};
use super::{Job, JobSubject, Refused, SourceFile, SyncResult, bare_file_name};

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
pub fn parse_source_field(field: &str) -> (&str, Option<&str>) {
    let field = field.trim();
    match field.split_once('(') {
        Some((name, rest)) => (name.trim(), Some(rest.trim_end_matches(')').trim())),
        None => (field, None),
    }
}

/// Values by source name and version, looked up by `&str` without
/// allocating (most names have one version).
#[derive(Debug)]
struct BySource<T>(HashMap<String, Vec<(String, T)>>);

impl<T> Default for BySource<T> {
    fn default() -> Self {
        BySource(HashMap::new())
    }
}

impl<T: Default> BySource<T> {
    /// Changes the value of (`name`, `version`), made empty first when
    /// there is none.
    fn update(&mut self, name: &str, version: &str, change: impl FnOnce(&mut T)) {
        let versions = match self.0.get_mut(name) {
            Some(v) => v,
            None => self.0.entry(name.to_string()).or_default(),
        };
        match versions.iter_mut().find(|(v, _)| v == version) {
            Some((_, t)) => change(t),
            None => {
                let mut t = T::default();
                change(&mut t);
                versions.push((version.to_string(), t));
            }
        }
    }
}

impl<T> BySource<T> {
    fn get(&self, name: &str, version: &str) -> Option<&T> {
        let versions = self.0.get(name)?;
        versions.iter().find(|(v, _)| v == version).map(|(_, t)| t)
    }

    /// Every (name, version, value).
    fn into_entries(self) -> impl Iterator<Item = (String, String, T)> {
        self.0.into_iter().flat_map(|(name, versions)| {
            versions
                .into_iter()
                .map(move |(version, t)| (name.clone(), version, t))
        })
    }
}

#[derive(Debug, Default)]
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

/// The `Checksums-Sha256` lines of a `Sources` stanza, `.dsc` first.
fn source_files(checksums: Option<&str>) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    for line in value_lines(checksums) {
        let mut parts = line.split_ascii_whitespace();
        let (sha, size, name) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (None, ..) => continue,
            (Some(sha), Some(size), Some(name), None) => (sha, size, name),
            _ => {
                return Err(format!(
                    "bad Checksums-Sha256 line `{}`",
                    line.escape_debug()
                ));
            }
        };
        let sha256 = sha.parse::<Digest>().map_err(|e| e.to_string())?;
        let size = size.parse::<u64>().map_err(|e| e.to_string())?;
        bare_file_name(name)?;
        files.push(SourceFile {
            name: name.to_string(),
            sha256,
            size,
        });
    }
    files.sort_by_key(|f| !f.name.ends_with(".dsc"));
    Ok(files)
}

/// A `Sources` index, read stanza by stanza as it decompresses: the
/// directory and files of each (source, version).
#[derive(Debug, Default)]
pub struct SourcesIndex {
    sources: BySource<SourceEntry>,
    refused: Vec<Refused>,
    stanzas: usize,
}

impl SourcesIndex {
    /// Reads a piece of the text (whole stanzas).
    pub fn feed(&mut self, piece: Piece<'_>) {
        let names = ["Package", "Version", "Directory", "Checksums-Sha256"];
        read_stanzas(piece, names, |read| {
            let n = self.stanzas;
            self.stanzas += 1;
            let read = read.map_err(|reason| Refused {
                entry: format!("Sources stanza {n}"),
                reason,
            });
            if let Err(r) = read.and_then(|fields| self.source(n, fields)) {
                self.refused.push(r);
            }
        });
    }

    /// Stanza `n`: its Package, Version, Directory and Checksums-Sha256.
    fn source(&mut self, n: usize, fields: [Option<&str>; 4]) -> Result<(), Refused> {
        let [name, version, dir, checksums] = fields;
        let (Some(name), Some(version), Some(dir)) =
            (single_line(name), single_line(version), single_line(dir))
        else {
            return Err(Refused {
                entry: format!("Sources stanza {n}"),
                reason: "missing Package, Version or Directory".into(),
            });
        };
        let files = relative_path(dir)
            .and_then(|()| check_name(name))
            .and_then(|()| check_version(version))
            .and_then(|()| source_files(checksums))
            .map_err(|reason| Refused {
                entry: format!("Sources {name} {version}"),
                reason,
            })?;
        let entry = SourceEntry {
            directory: dir.to_string(),
            files,
        };
        self.sources.update(name, version, |e| *e = entry);
        Ok(())
    }
}

/// A `Packages` index, read stanza by stanza as it decompresses: its
/// binaries grouped by the source build that made them.
#[derive(Debug)]
pub struct PackagesIndex {
    builds: BySource<Vec<JobSubject>>,
    refused: Vec<Refused>,
    stanzas: usize,
    filter: Filter,
}

impl PackagesIndex {
    /// An empty index that keeps only the binaries `filter` wants.
    pub fn new(filter: Filter) -> Self {
        PackagesIndex {
            builds: BySource::default(),
            refused: Vec::new(),
            stanzas: 0,
            filter,
        }
    }

    /// Reads a piece of the text (whole stanzas).
    pub fn feed(&mut self, piece: Piece<'_>) {
        let names = [
            "Package",
            "Version",
            "Filename",
            "SHA256",
            "Source",
            "Maintainer",
        ];
        read_stanzas(piece, names, |read| {
            let n = self.stanzas;
            self.stanzas += 1;
            let read = read.map_err(|reason| Refused {
                entry: format!("Packages stanza {n}"),
                reason,
            });
            if let Err(r) = read.and_then(|fields| self.binary(n, fields.map(single_line))) {
                self.refused.push(r);
            }
        });
    }

    /// Stanza `n`, a binary: its Package, Version, Filename, SHA256,
    /// Source and Maintainer.
    fn binary(&mut self, n: usize, fields: [Option<&str>; 6]) -> Result<(), Refused> {
        let [name, version, path, sha, source, maintainer] = fields;
        let (Some(name), Some(version), Some(path), Some(sha)) = (name, version, path, sha) else {
            return Err(Refused {
                entry: format!("Packages stanza {n}"),
                reason: "missing Package, Version, Filename or SHA256".into(),
            });
        };
        let refuse = |reason| Refused {
            entry: format!("Packages {name} {version}"),
            reason,
        };
        let checked = check_name(name)
            .and_then(|()| check_version(version))
            .and_then(|()| relative_path(path))
            .and_then(|()| {
                let base = path.rsplit('/').next().unwrap_or(path);
                bare_file_name(base).map(|()| base)
            })
            .and_then(|base| {
                sha.trim()
                    .parse::<Digest>()
                    .map(|d| (base, d))
                    .map_err(|e| format!("SHA256: {e}"))
            });
        let (filename, sha256) = checked.map_err(refuse)?;
        if !self.filter.wants(name, maintainer.unwrap_or("")) {
            return Ok(());
        }
        let (source, source_version) = match source {
            Some(s) => {
                let (n, v) = parse_source_field(s);
                (n, v.unwrap_or(version))
            }
            None => (name, version),
        };
        // Source and its version become a job key and, in the debian
        // backend, path components: refuse anything policy does not allow.
        check_name(source)
            .and_then(|()| check_version(source_version))
            .map_err(refuse)?;
        let subject = JobSubject {
            name: name.to_string(),
            version: version.to_string(),
            filename: filename.to_string(),
            sha256,
            path: path.to_string(),
        };
        self.builds
            .update(source, source_version, |subjects| subjects.push(subject));
        Ok(())
    }

    /// The jobs of this index, one per source build in the order of
    /// their keys, still without their sources (see
    /// [`Builds::with_sources`]): this runs while `Sources` may still be
    /// read.
    pub fn into_builds(self, origin: &Origin) -> Builds {
        let mut builds: Vec<(String, String, Vec<JobSubject>)> =
            self.builds.into_entries().collect();
        builds.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let jobs = builds
            .into_iter()
            .map(|(source, version, subjects)| Job {
                distribution: "debian".into(),
                release: Some(origin.release.clone()),
                component: origin.component.clone(),
                architecture: origin.architecture.clone(),
                source,
                version,
                mirror: origin.mirror.clone(),
                subjects,
                source_dir: None,
                source_files: Vec::new(),
                buildinfo_url: None,
            })
            .collect();
        Builds {
            jobs,
            refused: self.refused,
        }
    }
}

/// Where the jobs of a `Packages` index come from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The release.
    pub release: String,
    /// The component.
    pub component: String,
    /// The architecture.
    pub architecture: String,
    /// The archive root.
    pub mirror: String,
}

/// The jobs of a `Packages` index before their sources are known.
#[derive(Debug)]
pub struct Builds {
    jobs: Vec<Job>,
    refused: Vec<Refused>,
}

impl Builds {
    /// Gives each job its source's directory and files from `sources`, and
    /// takes what `sources` refused (so that it is reported once, not once
    /// per architecture).
    pub fn with_sources(mut self, sources: &mut SourcesIndex) -> SyncResult {
        for job in &mut self.jobs {
            if let Some(src) = sources.sources.get(&job.source, &job.version) {
                job.source_dir = Some(src.directory.clone());
                job.source_files = src.files.clone();
            }
        }
        let mut refused = std::mem::take(&mut sources.refused);
        refused.extend(self.refused);
        SyncResult {
            jobs: self.jobs,
            refused,
            ..SyncResult::default()
        }
    }
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
    let mut s = SourcesIndex::default();
    s.feed(Piece::Text(sources));
    let mut p = PackagesIndex::new(filter.clone());
    p.feed(Piece::Text(packages));
    let origin = Origin {
        release: release.to_string(),
        component: component.to_string(),
        architecture: arch.to_string(),
        mirror: mirror.to_string(),
    };
    p.into_builds(&origin).with_sources(&mut s)
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

    /// Mangled real stanzas, cut anywhere: every stanza is either read or
    /// refused with a reason, and nothing panics.
    #[test]
    fn mangled_indexes_never_panic() {
        use crate::sync::stanza::StanzaChunks;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let packages = fixture("Packages_hello.stanza").repeat(3);
        let sources = fixture("Sources_hello.stanza").repeat(3);
        let alphabet = b" \t\n:#(),/.-_0123456789abcdefABCDEF\xc3\xa9\xff";
        for round in 0..2000 {
            let mut p = packages.clone().into_bytes();
            let mut s = sources.clone().into_bytes();
            for text in [&mut p, &mut s] {
                for _ in 0..rng.gen_range(1..8) {
                    let at = rng.gen_range(0..text.len());
                    let b = alphabet[rng.gen_range(0..alphabet.len())];
                    match rng.gen_range(0..3) {
                        0 => text[at] = b,
                        1 => text.insert(at, b),
                        _ => {
                            text.remove(at);
                        }
                    }
                }
                if round % 7 == 0 {
                    let cut = rng.gen_range(0..text.len());
                    text.truncate(cut);
                }
            }
            let mut si = SourcesIndex::default();
            let mut pi = PackagesIndex::new(Filter::all());
            for (text, sources) in [(&s, true), (&p, false)] {
                let mut chunks = StanzaChunks::default();
                let mut feed = |piece: Piece<'_>| {
                    if sources {
                        si.feed(piece)
                    } else {
                        pi.feed(piece)
                    }
                };
                let step = rng.gen_range(1..64);
                let mut utf8 = true;
                for part in text.chunks(step) {
                    utf8 &= chunks.push(part, &mut feed).is_ok();
                }
                utf8 &= chunks.finish(&mut feed).is_ok();
                assert_eq!(utf8, std::str::from_utf8(text).is_ok(), "round {round}");
            }
            let origin = Origin {
                release: "bookworm".into(),
                component: "main".into(),
                architecture: "amd64".into(),
                mirror: "http://m".into(),
            };
            let r = pi.into_builds(&origin).with_sources(&mut si);
            for job in &r.jobs {
                assert!(check_name(&job.source).is_ok() && check_version(&job.version).is_ok());
            }
            assert!(r.refused.iter().all(|x| !x.reason.is_empty()));
        }
    }

    #[test]
    fn source_fields() {
        assert_eq!(parse_source_field("glibc"), ("glibc", None));
        assert_eq!(
            parse_source_field("glibc (2.36-9)"),
            ("glibc", Some("2.36-9"))
        );
    }
}
