//! Debian `.buildinfo` files: the environment a package was built in, as
//! `dpkg-genbuildinfo` recorded it. Everything in one is untrusted (it comes
//! from a mirror): names, versions, paths and variables are checked before
//! they reach a command line or a script.

use std::str::FromStr as _;

use vouch_attest::Digest;

use crate::sync::debian::{check_name, check_version};

/// Largest `.buildinfo` read.
pub const MAX_BUILDINFO: u64 = 1 << 20;

/// What a `.buildinfo` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildinfo {
    /// `Source`.
    pub source: String,
    /// `Version` (of the source).
    pub version: String,
    /// `Build-Architecture`.
    pub build_architecture: String,
    /// `Build-Path`, when recorded.
    pub build_path: Option<String>,
    /// `Environment`: variable and value, in order.
    pub environment: Vec<(String, String)>,
    /// `Installed-Build-Depends`: package (with `:arch` when qualified)
    /// and exact version.
    pub installed: Vec<(String, String)>,
    /// `Checksums-Sha256`: file name, sha256, size.
    pub files: Vec<(String, Digest, u64)>,
}

/// The paragraph inside a possibly OpenPGP-signed deb822 document.
pub fn unsigned_body(text: &str) -> String {
    text.lines()
        .skip_while(|l| {
            l.starts_with("-----BEGIN PGP SIGNED MESSAGE") || l.starts_with("Hash:") || l.is_empty()
        })
        .take_while(|l| !l.starts_with("-----BEGIN PGP SIGNATURE"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn lines(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// A variable name of the recorded environment.
fn check_variable(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an environment variable name",
            name.escape_debug()
        ))
    }
}

/// An absolute build path of plain characters, without `.` or `..`.
fn check_build_path(path: &str) -> Result<(), String> {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-~".contains(c));
    let parts_ok = path
        .split('/')
        .skip(1)
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if path.starts_with('/') && path.len() <= 255 && plain && parts_ok && path != "/" {
        Ok(())
    } else {
        Err(format!(
            "Build-Path `{}` is not a plain absolute path",
            path.escape_debug()
        ))
    }
}

impl Buildinfo {
    /// Parses and checks a `.buildinfo`.
    pub fn parse(text: &str) -> Result<Buildinfo, String> {
        let body = unsigned_body(text);
        let p = deb822_fast::Paragraph::from_str(body.trim())
            .map_err(|e| format!("not a deb822 paragraph: {e}"))?;
        let field = |name: &str| {
            p.get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("no {name} field"))
        };
        let source = field("Source")?
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        check_name(&source).map_err(|e| format!("Source: {e}"))?;
        let version = field("Version")?.to_string();
        check_version(&version).map_err(|e| format!("Version: {e}"))?;
        let build_architecture = field("Build-Architecture")?.to_string();
        check_name(&build_architecture).map_err(|e| format!("Build-Architecture: {e}"))?;
        let build_path = match p.get("Build-Path").map(str::trim) {
            Some(path) if !path.is_empty() => {
                check_build_path(path)?;
                Some(path.to_string())
            }
            _ => None,
        };
        let mut environment = Vec::new();
        for line in lines(p.get("Environment").unwrap_or("")) {
            let (name, value) = line.split_once('=').ok_or_else(|| {
                format!(
                    "Environment: `{}` is not NAME=\"value\"",
                    line.escape_debug()
                )
            })?;
            check_variable(name)?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.chars().any(char::is_control) {
                return Err(format!("Environment: {name} holds a control character"));
            }
            environment.push((name.to_string(), value.to_string()));
        }
        let mut installed = Vec::new();
        for item in field("Installed-Build-Depends")?.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (name, rest) = item.split_once(' ').ok_or_else(|| {
                format!(
                    "Installed-Build-Depends: `{}` has no version",
                    item.escape_debug()
                )
            })?;
            let version = rest
                .trim()
                .strip_prefix("(=")
                .and_then(|v| v.strip_suffix(')'))
                .map(str::trim)
                .ok_or_else(|| {
                    format!(
                        "Installed-Build-Depends: `{}` is not `name (= version)`",
                        item.escape_debug()
                    )
                })?;
            let bare = name.split_once(':').map_or(name, |(n, arch)| {
                let _ = arch;
                n
            });
            check_name(bare).map_err(|e| format!("Installed-Build-Depends: {e}"))?;
            if let Some((_, arch)) = name.split_once(':') {
                check_name(arch).map_err(|e| format!("Installed-Build-Depends: {e}"))?;
            }
            check_version(version).map_err(|e| format!("Installed-Build-Depends: {e}"))?;
            installed.push((name.to_string(), version.to_string()));
        }
        let mut files = Vec::new();
        for line in lines(p.get("Checksums-Sha256").unwrap_or("")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [sha, size, name] = parts[..] else {
                return Err(format!(
                    "Checksums-Sha256: `{}` is not `SHA256 SIZE NAME`",
                    line.escape_debug()
                ));
            };
            let sha: Digest = sha
                .parse()
                .map_err(|_| format!("Checksums-Sha256: bad sha256 `{sha}`"))?;
            let size: u64 = size
                .parse()
                .map_err(|_| format!("Checksums-Sha256: bad size `{size}`"))?;
            crate::sync::bare_file_name(name).map_err(|e| format!("Checksums-Sha256: {e}"))?;
            files.push((name.to_string(), sha, size));
        }
        Ok(Buildinfo {
            source,
            version,
            build_architecture,
            build_path,
            environment,
            installed,
            files,
        })
    }

    /// Checks that the buildinfo records `filename` with `sha256`: it
    /// describes the build of that very artifact.
    pub fn describes(&self, filename: &str, sha256: &Digest) -> Result<(), String> {
        match self.files.iter().find(|(n, _, _)| n == filename) {
            Some((_, d, _)) if d == sha256 => Ok(()),
            Some((_, d, _)) => Err(format!(
                "the .buildinfo records {filename} with sha256 {d}, the archive publishes {sha256}"
            )),
            None => Err(format!("the .buildinfo does not record {filename}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/debian/vouch-repro-test_1.0_amd64.buildinfo"
        ))
        .unwrap()
    }

    #[test]
    fn a_real_buildinfo_parses() {
        let b = Buildinfo::parse(&fixture()).unwrap();
        assert_eq!(b.source, "vouch-repro-test");
        assert_eq!(b.version, "1.0");
        assert_eq!(b.build_architecture, "amd64");
        assert_eq!(b.build_path.as_deref(), Some("/build/vouch-repro-test-1.0"));
        assert!(b.installed.iter().any(|(n, _)| n == "build-essential"));
        assert!(b.installed.len() > 100);
        assert!(
            b.environment
                .iter()
                .any(|(n, v)| n == "SOURCE_DATE_EPOCH" && v.chars().all(|c| c.is_ascii_digit()))
        );
        let (name, sha, _) = &b.files[0];
        b.describes(name, sha).unwrap();
        assert!(b.describes(name, &Digest::of(b"other")).is_err());
        assert!(b.describes("other.deb", sha).is_err());
    }

    #[test]
    fn hostile_fields_are_refused() {
        let good = fixture();
        for (from, to) in [
            (
                "Build-Path: /build/vouch-repro-test-1.0",
                "Build-Path: /build/../etc",
            ),
            (
                "Build-Path: /build/vouch-repro-test-1.0",
                "Build-Path: /build/x';rm -rf /;'",
            ),
            (" LANG=\"C.UTF-8\"", " LA NG=\"C.UTF-8\""),
            (" LANG=\"C.UTF-8\"", " LD_PRELOAD$(id)=\"x\""),
            (" bash (=", " bash;id (="),
            ("Source: vouch-repro-test", "Source: ../../x"),
        ] {
            assert!(good.contains(from), "{from}");
            let bad = good.replacen(from, to, 1);
            assert!(Buildinfo::parse(&bad).is_err(), "accepted {to}");
        }
    }
}
