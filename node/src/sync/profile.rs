//! Sync profiles: which repositories a node watches.

use std::path::PathBuf;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// A supported distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Arch Linux: repository databases.
    Archlinux,
    /// Debian: `Packages` and `Sources` indexes.
    Debian,
}

impl Distribution {
    /// The name used in verdicts.
    pub fn as_str(&self) -> &'static str {
        match self {
            Distribution::Archlinux => "archlinux",
            Distribution::Debian => "debian",
        }
    }
}

/// `[[sync]]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncProfile {
    /// A name for `vouchd sync --profile NAME`.
    pub name: String,
    /// `archlinux` or `debian`.
    pub distribution: Distribution,
    /// Arch: a mirror URL with `$repo` and `$arch`
    /// (`https://geo.mirror.pkgbuild.com/$repo/os/$arch`). Debian: the
    /// archive root (`https://deb.debian.org/debian`).
    pub mirror: String,
    /// Arch repositories (`core`, `extra`).
    #[serde(default)]
    pub repos: Vec<String>,
    /// Debian releases (`bookworm`).
    #[serde(default)]
    pub releases: Vec<String>,
    /// Debian components (`main`).
    #[serde(default)]
    pub components: Vec<String>,
    /// Architectures (`x86_64`; `amd64`).
    pub architectures: Vec<String>,
    /// Only package names matching one of these globs (default: all).
    #[serde(default)]
    pub include: Vec<String>,
    /// Never package names matching one of these globs.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Only packages whose packager (Arch) or maintainer (Debian) contains
    /// this text.
    #[serde(default)]
    pub maintainer: Option<String>,
    /// Seconds between syncs.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// OpenPGP keys that sign the repository's metadata: a keyring file
    /// (binary or armored) or a directory of them. Debian: `InRelease` is
    /// verified against it, default [`DEBIAN_KEYRING`]. Arch: when set,
    /// each database is verified against its `.db.sig`.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// Debian: where each build's `.buildinfo` is published, a URL template
    /// with `{mirror}` (the archive root), `{dir}` (the source package's
    /// directory in the pool), `{source}`, `{version}` (without epoch) and
    /// `{arch}`; e.g. `{mirror}/{dir}/{source}_{version}_{arch}.buildinfo`
    /// for files beside the packages. Without it a Debian job cannot be
    /// rebuilt in its recorded environment and ends as FAIL (`fetch`).
    #[serde(default)]
    pub buildinfo: Option<String>,
    /// Debian: read an archive without verifying its `InRelease` (apt's
    /// `trusted=yes`). Anyone between the node and the mirror then chooses
    /// what it rebuilds.
    #[serde(default)]
    pub allow_unsigned: bool,
}

/// The keyring a Debian profile uses when it names none: the one Debian's
/// `debian-archive-keyring` package installs.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

fn default_interval() -> u64 {
    3600
}

/// The include/exclude/maintainer filter of a profile.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
    maintainer: Option<String>,
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("glob `{p}`: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

impl Filter {
    /// The filter of `profile`.
    pub fn new(profile: &SyncProfile) -> Result<Filter, String> {
        Ok(Filter {
            include: if profile.include.is_empty() {
                None
            } else {
                Some(globs(&profile.include)?)
            },
            exclude: globs(&profile.exclude)?,
            maintainer: profile.maintainer.clone(),
        })
    }

    /// Everything passes.
    pub fn all() -> Filter {
        Filter {
            include: None,
            exclude: GlobSet::empty(),
            maintainer: None,
        }
    }

    /// Whether a package with this name and maintainer is wanted.
    pub fn wants(&self, name: &str, maintainer: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(name))
            && (self.exclude.is_empty() || !self.exclude.is_match(name))
            && self
                .maintainer
                .as_ref()
                .is_none_or(|m| maintainer.contains(m.as_str()))
    }
}

impl SyncProfile {
    /// A profile of `distribution` at `mirror` with everything else at its
    /// default (no repos, releases or architectures yet).
    pub fn new(name: &str, distribution: Distribution, mirror: &str) -> SyncProfile {
        SyncProfile {
            name: name.to_string(),
            distribution,
            mirror: mirror.to_string(),
            repos: Vec::new(),
            releases: Vec::new(),
            components: Vec::new(),
            architectures: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            maintainer: None,
            interval_secs: default_interval(),
            keyring: None,
            allow_unsigned: false,
            buildinfo: None,
        }
    }

    /// The `.buildinfo` URL of `job` under this profile's template.
    pub fn buildinfo_url(&self, job: &super::Job) -> Option<String> {
        let template = self.buildinfo.as_deref()?;
        let version = job
            .version
            .split_once(':')
            .map_or(job.version.as_str(), |(_, v)| v);
        Some(
            template
                .replace("{mirror}", self.mirror.trim_end_matches('/'))
                .replace("{dir}", job.source_dir.as_deref().unwrap_or(""))
                .replace("{source}", &job.source)
                .replace("{version}", version)
                .replace("{arch}", &job.architecture),
        )
    }

    /// The keyring to verify signatures with, if any.
    pub fn keyring_path(&self) -> Option<PathBuf> {
        match self.distribution {
            Distribution::Debian if self.allow_unsigned => None,
            Distribution::Debian => Some(
                self.keyring
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEBIAN_KEYRING)),
            ),
            Distribution::Archlinux => self.keyring.clone(),
        }
    }

    /// Checks the profile's shape.
    pub fn check(&self) -> Result<(), String> {
        Filter::new(self)?;
        if self.architectures.is_empty() {
            return Err(format!("sync profile `{}`: no architectures", self.name));
        }
        match self.distribution {
            Distribution::Archlinux => {
                if self.repos.is_empty() {
                    return Err(format!("sync profile `{}`: no repos", self.name));
                }
            }
            Distribution::Debian => {
                if self.releases.is_empty() || self.components.is_empty() {
                    return Err(format!(
                        "sync profile `{}`: needs releases and components",
                        self.name
                    ));
                }
            }
        }
        if !(self.mirror.starts_with("http://")
            || self.mirror.starts_with("https://")
            || self.mirror.starts_with("file://"))
        {
            return Err(format!(
                "sync profile `{}`: mirror must be an http(s) or file URL",
                self.name
            ));
        }
        Ok(())
    }
}
