//! Debian rebuilds in the recorded build environment, isolated from the
//! node, as Debian's `debrebuild` does with sbuild's unshare backend: the
//! `.buildinfo` names every package installed at build time with its exact
//! version, the build architecture, path and environment. That system is
//! assembled once by `mmdebstrap --mode=unshare` and kept (see
//! [`super::environment`]); each build runs on a throw-away overlay of it in
//! the build user's namespaces ([`super::namespace`]) or in a qemu guest
//! ([`super::guest`]). The source package is the only input copied in, the
//! build runs as `nobody` with no network, and the rebuilt `.deb`s are
//! copied out; nothing else of the node is visible inside.
//!
//! When apt cannot install an exact version from the configured mirrors,
//! the result is [`BuildStatus::Unavailable`] (a `FAIL` with reason
//! `fetch`), never a comparison.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::buildinfo::Buildinfo;
use super::stage::Stage;
use super::{BuildRun, BuildStatus, environment, guest, namespace};
use crate::sync::Job;

/// How a build is kept from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// On the host, as the daemon's user (not for the debian backend).
    None,
    /// User, mount, PID, IPC and network namespaces and a throw-away root
    /// file system.
    #[default]
    Namespace,
    /// A qemu guest.
    Vm,
}

/// Settings of the debian backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianBackend {
    /// How the build is isolated: `namespace` (default) or `vm`.
    #[serde(default)]
    pub isolation: Isolation,
    /// Archives the recorded environment is assembled from: `deb`-style
    /// URIs, each with the job's release and `components`.
    #[serde(default = "default_mirrors")]
    pub mirrors: Vec<String>,
    /// Components of those archives.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// The `mmdebstrap` command.
    #[serde(default = "default_mmdebstrap")]
    pub mmdebstrap: String,
    /// When the daemon runs as root: the unprivileged user that runs
    /// `mmdebstrap` (it needs ranges in `/etc/subuid` and `/etc/subgid`).
    /// Root inside the build's user namespace then maps to that user's
    /// sub-ids, never to root. A daemon that is not root runs it itself.
    #[serde(default = "default_build_user")]
    pub build_user: String,
    /// Where builds are staged, outside the data directory (which the
    /// build user cannot enter).
    #[serde(default = "default_staging")]
    pub staging: std::path::PathBuf,
    /// Kept between builds: downloaded packages (`archives/`; apt checks
    /// each against the archive's signed indexes before it is used) and
    /// assembled environments (`environments/`). None: every build
    /// downloads and assembles its environment afresh.
    #[serde(default = "default_cache")]
    pub cache: Option<std::path::PathBuf>,
    /// Assembled environments kept in the cache (least recently used ones
    /// are removed first).
    #[serde(default = "default_max_environments")]
    pub max_environments: usize,
    /// The guest, for `isolation = "vm"`.
    #[serde(default)]
    pub vm: guest::VmSettings,
}

fn default_mirrors() -> Vec<String> {
    vec!["http://deb.debian.org/debian".into()]
}
fn default_components() -> Vec<String> {
    vec!["main".into()]
}
fn default_mmdebstrap() -> String {
    "mmdebstrap".into()
}
fn default_build_user() -> String {
    "vouch-build".into()
}
fn default_staging() -> std::path::PathBuf {
    std::env::temp_dir()
}
fn default_max_environments() -> usize {
    8
}
fn default_cache() -> Option<std::path::PathBuf> {
    Some(std::env::temp_dir().join("vouch-apt-cache"))
}

impl Default for DebianBackend {
    fn default() -> Self {
        DebianBackend {
            isolation: Isolation::Namespace,
            mirrors: default_mirrors(),
            components: default_components(),
            mmdebstrap: default_mmdebstrap(),
            build_user: default_build_user(),
            staging: default_staging(),
            cache: default_cache(),
            max_environments: default_max_environments(),
            vm: guest::VmSettings::default(),
        }
    }
}

/// Printed inside the build just before `dpkg-buildpackage` starts: it
/// marks in the log where the package's own build begins.
const BUILD_STARTS: &str = "vouch: the recorded environment is ready; building";

/// The backend's version string.
pub fn version(b: &DebianBackend) -> String {
    let mm = std::process::Command::new(&b.mmdebstrap)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "mmdebstrap unavailable".into());
    format!(
        "recorded environment (.buildinfo); {mm}; isolation {:?}",
        b.isolation
    )
    .to_lowercase()
}

/// Quotes `s` for a POSIX shell.
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script run inside the throw-away system: the source unpacked at
/// `build_path` (whose parent is `parent`), then built.
fn build_script(b: &Buildinfo, dsc: &str, build_path: &str, parent: &str) -> String {
    let mut env = vec![
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/nonexistent".to_string(),
    ];
    for (name, value) in &b.environment {
        if name != "PATH" && name != "HOME" {
            env.push(format!("{name}={}", quote(value)));
        }
    }
    // Root of the user namespace unpacks; the build itself runs as nobody
    // in fresh PID, mount (its own /proc), IPC, UTS and network
    // namespaces, with no way to gain privileges.
    format!(
        "#!/bin/sh\n\
         set -e\n\
         mkdir -p {parent}\n\
         dpkg-source --no-check -x /vouch/src/{dsc} {path}\n\
         chown -R 65534:65534 {parent}\n\
         cd {path}\n\
         echo {starts}\n\
         exec unshare --net --pid --fork --ipc --uts --mount --propagation unchanged --mount-proc -- \
         setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs -- \
         env -i {env} dpkg-buildpackage -b -uc -us\n",
        parent = quote(parent),
        dsc = quote(dsc),
        path = quote(build_path),
        starts = quote(BUILD_STARTS),
        env = env.join(" "),
    )
}

/// Rebuilds `job`: its source files are in `input/src/`, its `.buildinfo`
/// in `input/buildinfo`.
pub async fn build(
    backend: &DebianBackend,
    job: &Job,
    workdir: &Path,
    timeout: Duration,
    max_log: usize,
) -> BuildRun {
    let output = workdir.join("output");
    let mut log = Vec::new();
    let done = |status, log: Vec<u8>| BuildRun {
        status,
        log,
        output_dir: output.clone(),
        version_note: None,
    };
    if backend.isolation == Isolation::None {
        log.extend_from_slice(
            b"the debian backend does not build on the host: set isolation = \"namespace\" or \"vm\"\n",
        );
        return done(BuildStatus::BackendError, log);
    }
    let info = match recorded(job, workdir) {
        Ok(i) => i,
        Err(e) => {
            log.extend_from_slice(format!("{e}\n").as_bytes());
            return done(BuildStatus::Unavailable, log);
        }
    };
    let Some(dsc) = job.source_files.iter().find(|f| f.name.ends_with(".dsc")) else {
        log.extend_from_slice(b"no .dsc for this source in the Sources index\n");
        return done(BuildStatus::Unavailable, log);
    };
    let build_path = info.build_path.clone().unwrap_or_else(|| {
        let upstream = job.version.split(':').next_back().unwrap_or(&job.version);
        format!("/build/{}-{upstream}", job.source)
    });
    let parent = Path::new(&build_path)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("/build")
        .to_string();
    // The build user cannot enter the data directory: the build is staged
    // outside it, with only its inputs.
    let own: Vec<_> = [
        environment::environments_dir(backend),
        environment::archives_dir(backend),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stage = match Stage::new(
        &backend.staging,
        &backend.build_user,
        Some(&workdir.join("input/src")),
        &own,
    ) {
        Ok(s) => s,
        Err(e) => {
            log.extend_from_slice(format!("{e}\n").as_bytes());
            return done(BuildStatus::BackendError, log);
        }
    };
    if let Err(e) = stage.write(
        "vouch-build.sh",
        &build_script(&info, &dsc.name, &build_path, &parent),
    ) {
        log.extend_from_slice(format!("{e}\n").as_bytes());
        return done(BuildStatus::BackendError, log);
    }
    let release = job.release.clone().unwrap_or_else(|| "stable".into());
    let env =
        match environment::prepare(backend, &info, &release, &stage, timeout, max_log, &mut log)
            .await
        {
            Ok(e) => e,
            Err(status) => return done(status, log),
        };
    log.extend_from_slice(
        format!(
            "recorded environment: {} packages, Build-Architecture {}, Build-Path {build_path}\n",
            info.installed.len(),
            info.build_architecture
        )
        .as_bytes(),
    );
    let mut note = None;
    let run = match backend.isolation {
        Isolation::Vm => guest::build(&backend.vm, &stage, &env, &parent, timeout, max_log)
            .await
            .map(|g| {
                note = Some(g.note);
                g.run
            }),
        _ => namespace::build(&stage, &env, &parent, timeout, max_log).await,
    };
    let done = |status, log| BuildRun {
        version_note: note.clone(),
        ..done(status, log)
    };
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            log.extend_from_slice(format!("{e}\n").as_bytes());
            return done(BuildStatus::BackendError, log);
        }
    };
    log.extend_from_slice(&run.log);
    if run.status != BuildStatus::Ok {
        return done(run.status, log);
    }
    // Every .deb the build produced, next to the tree.
    for name in stage.collect(&output, |n| n.ends_with(".deb")).0 {
        log.extend_from_slice(format!("built {name}\n").as_bytes());
    }
    done(BuildStatus::Ok, log)
}

/// The `.buildinfo` of `job`, checked against the published artifacts.
fn recorded(job: &Job, workdir: &Path) -> Result<Buildinfo, String> {
    let text = std::fs::read_to_string(workdir.join("input/buildinfo")).map_err(|_| {
        "no .buildinfo for this build (set `buildinfo` in the sync profile): \
         without the recorded environment there is nothing to compare against"
            .to_string()
    })?;
    let info = Buildinfo::parse(&text).map_err(|e| format!("the .buildinfo is refused: {e}"))?;
    for s in &job.subjects {
        info.describes(&s.filename, &s.sha256)?;
    }
    if info.source != job.source {
        return Err(format!(
            "the .buildinfo is of {}, not {}",
            info.source, job.source
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        let b = Buildinfo {
            source: "x".into(),
            version: "1".into(),
            build_architecture: "amd64".into(),
            build_path: None,
            environment: vec![("DEB_BUILD_OPTIONS".into(), "x'; touch /pwned; '".into())],
            installed: vec![],
            files: vec![],
        };
        let s = build_script(&b, "x_1.dsc", "/build/x-1", "/build");
        assert!(
            s.contains("DEB_BUILD_OPTIONS='x'\\''; touch /pwned; '\\'''"),
            "{s}"
        );
    }
}
