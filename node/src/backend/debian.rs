//! Debian rebuilds in the recorded build environment, isolated from the
//! node, as Debian's `debrebuild` does with sbuild's unshare backend: the
//! `.buildinfo` names every package installed at build time with its exact
//! version, the build architecture, path and environment. `mmdebstrap
//! --mode=unshare` assembles exactly that system as a throw-away root file
//! system inside user, mount, PID and IPC namespaces (root inside maps to
//! an unprivileged range outside), the source package is the only input
//! copied in, and the build runs in its own network namespace with only a
//! loopback device. The rebuilt `.deb`s are copied out; nothing else of the
//! node is visible inside.
//!
//! When apt cannot install an exact version from the configured mirrors,
//! the result is [`BuildStatus::Unavailable`] (a `FAIL` with reason
//! `fetch`), never a comparison.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::buildinfo::Buildinfo;
use super::{BuildRun, BuildStatus, run_command};
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
    /// How the build is isolated (only `namespace` is built so far).
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
    /// Downloaded packages kept between builds (apt checks each against
    /// the archive's signed indexes before it is used); none: download
    /// every time.
    #[serde(default = "default_cache")]
    pub cache: Option<std::path::PathBuf>,
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
        }
    }
}

/// Printed inside the build just before `dpkg-buildpackage` starts: a
/// failure after it is the package's, before it the environment's.
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
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script run inside the throw-away system.
fn build_script(b: &Buildinfo, dsc: &str, build_path: &str) -> String {
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
        parent = quote(
            Path::new(build_path)
                .parent()
                .and_then(|p| p.to_str())
                .unwrap_or("/build")
        ),
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
    };
    match backend.isolation {
        Isolation::Namespace => {}
        Isolation::None => {
            log.extend_from_slice(
                b"the debian backend does not build on the host: set isolation = \"namespace\"\n",
            );
            return done(BuildStatus::BackendError, log);
        }
        Isolation::Vm => {
            log.extend_from_slice(b"isolation = \"vm\" is not available in this version\n");
            return done(BuildStatus::BackendError, log);
        }
    }
    let text = match std::fs::read_to_string(workdir.join("input/buildinfo")) {
        Ok(t) => t,
        Err(_) => {
            log.extend_from_slice(
                b"no .buildinfo for this build (set `buildinfo` in the sync profile): \
                  without the recorded environment there is nothing to compare against\n",
            );
            return done(BuildStatus::Unavailable, log);
        }
    };
    let info = match Buildinfo::parse(&text) {
        Ok(i) => i,
        Err(e) => {
            log.extend_from_slice(format!("the .buildinfo is refused: {e}\n").as_bytes());
            return done(BuildStatus::Unavailable, log);
        }
    };
    for s in &job.subjects {
        if let Err(e) = info.describes(&s.filename, &s.sha256) {
            log.extend_from_slice(format!("{e}\n").as_bytes());
            return done(BuildStatus::Unavailable, log);
        }
    }
    if info.source != job.source {
        log.extend_from_slice(
            format!("the .buildinfo is of {}, not {}\n", info.source, job.source).as_bytes(),
        );
        return done(BuildStatus::Unavailable, log);
    }
    let Some(dsc) = job.source_files.iter().find(|f| f.name.ends_with(".dsc")) else {
        log.extend_from_slice(b"no .dsc for this source in the Sources index\n");
        return done(BuildStatus::Unavailable, log);
    };
    let build_path = info.build_path.clone().unwrap_or_else(|| {
        let upstream = job.version.split(':').next_back().unwrap_or(&job.version);
        format!("/build/{}-{upstream}", job.source)
    });
    // The build user cannot enter the data directory: the build is staged
    // outside it, with only its inputs.
    let stage = match Stage::new(backend, &workdir.join("input/src")) {
        Ok(s) => s,
        Err(e) => {
            log.extend_from_slice(format!("{e}\n").as_bytes());
            return done(BuildStatus::BackendError, log);
        }
    };
    let script = stage.dir.path().join("vouch-build.sh");
    if let Err(e) = std::fs::write(&script, build_script(&info, &dsc.name, &build_path)) {
        log.extend_from_slice(format!("cannot write the build script: {e}\n").as_bytes());
        return done(BuildStatus::BackendError, log);
    }
    let release = job.release.clone().unwrap_or_else(|| "stable".into());
    let include: Vec<String> = info
        .installed
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let parent = Path::new(&build_path)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("/build")
        .to_string();
    let built = stage.dir.path().join("built");
    let src = stage.dir.path().join("src");
    let mut args = stage.runner.clone();
    args.extend([
        backend.mmdebstrap.clone(),
        "--mode=unshare".into(),
        "--variant=apt".into(),
        format!("--architectures={}", info.build_architecture),
        format!("--components={}", backend.components.join(",")),
        format!("--include={}", include.join(",")),
    ]);
    if let Some(cache) = &backend.cache {
        // The cache is saved before the build runs, so a build cannot
        // leave anything in it.
        let cache = quote(&cache.display().to_string());
        args.extend([
            "--skip=download/empty".to_string(),
            "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\"".into(),
            format!("--setup-hook=sync-in {cache} /var/cache/apt/archives"),
            format!("--customize-hook=sync-out /var/cache/apt/archives {cache}"),
        ]);
    }
    args.extend([
        "--customize-hook=mkdir -p \"$1/vouch/src\"".into(),
        format!(
            "--customize-hook=copy-in {} /vouch",
            quote(&script.display().to_string())
        ),
        format!(
            "--customize-hook=sync-in {} /vouch/src",
            quote(&src.display().to_string())
        ),
        "--customize-hook=chroot \"$1\" sh /vouch/vouch-build.sh".into(),
        format!(
            "--customize-hook=sync-out {} {}",
            quote(&parent),
            quote(&built.display().to_string())
        ),
        release,
        "/dev/null".into(),
    ]);
    args.extend(backend.mirrors.iter().cloned());
    log.extend_from_slice(
        format!(
            "recorded environment: {} packages, Build-Architecture {}, Build-Path {build_path}\n",
            info.installed.len(),
            info.build_architecture
        )
        .as_bytes(),
    );
    let run = run_command(&args, stage.dir.path(), &[], timeout, max_log).await;
    log.extend_from_slice(&run.log);
    let text = String::from_utf8_lossy(&run.log);
    match run.status {
        BuildStatus::Ok => {}
        BuildStatus::Failed if !text.contains(BUILD_STARTS) => {
            let missing = missing_packages(&text);
            if missing.is_empty() {
                log.extend_from_slice(
                    b"the recorded environment could not be assembled (see above)\n",
                );
            } else {
                log.extend_from_slice(
                    format!(
                        "the recorded environment could not be assembled: not on the configured mirrors: {}\n",
                        missing.join(", ")
                    )
                    .as_bytes(),
                );
            }
            return done(BuildStatus::Unavailable, log);
        }
        other => return done(other, log),
    }
    // Every .deb the build produced, next to the tree.
    if let Ok(entries) = std::fs::read_dir(&built) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "deb")
                && let Some(name) = p.file_name()
            {
                let _ = std::fs::copy(&p, output.join(name));
                log.extend_from_slice(format!("built {}\n", name.to_string_lossy()).as_bytes());
            }
        }
    }
    done(BuildStatus::Ok, log)
}

/// A staging directory outside the data directory, owned by the build
/// user, holding the source files and receiving the built files; and the
/// command prefix that runs as that user.
struct Stage {
    dir: tempfile::TempDir,
    runner: Vec<String>,
}

impl Stage {
    fn new(backend: &DebianBackend, src: &Path) -> Result<Stage, String> {
        let dir = tempfile::Builder::new()
            .prefix("vouch-build-")
            .tempdir_in(&backend.staging)
            .map_err(|e| format!("cannot stage in {}: {e}", backend.staging.display()))?;
        let staged = dir.path().join("src");
        // Everything the build user must own: the stage, its files, the cache.
        let mut owned = vec![
            dir.path().to_path_buf(),
            staged.clone(),
            dir.path().join("built"),
        ];
        std::fs::create_dir_all(&staged).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.path().join("built")).map_err(|e| e.to_string())?;
        for e in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let to = staged.join(e.file_name());
            std::fs::copy(e.path(), &to).map_err(|e| e.to_string())?;
            owned.push(to);
        }
        if let Some(cache) = &backend.cache {
            std::fs::create_dir_all(cache)
                .map_err(|e| format!("cannot create the cache {}: {e}", cache.display()))?;
            owned.push(cache.clone());
        }
        let mut runner = Vec::new();
        let root = std::fs::metadata("/proc/self").map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            m.uid() == 0
        });
        if root.unwrap_or(false) {
            let id = |flag: &str| -> Result<u32, String> {
                let out = std::process::Command::new("id")
                    .args([flag, &backend.build_user])
                    .output()
                    .map_err(|e| e.to_string())?;
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .map_err(|_| {
                        format!(
                            "the build user `{}` does not exist: create it with `useradd --system \
                             --no-create-home {0}` and give it sub-ids with `usermod \
                             --add-subuids 300000-365535 --add-subgids 300000-365535 {0}` \
                             (see README, Isolation)",
                            backend.build_user
                        )
                    })
            };
            let (uid, gid) = (id("-u")?, id("-g")?);
            for p in &owned {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            runner = vec![
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--init-groups".into(),
                "--".into(),
                "env".into(),
                format!("HOME={}", dir.path().display()),
                format!("TMPDIR={}", dir.path().display()),
            ];
        }
        Ok(Stage { dir, runner })
    }
}

/// The packages apt said it could not find, from its error lines.
fn missing_packages(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in log.lines() {
        // E: Version '1.2-3' for 'foo' was not found
        if let Some(rest) = line.strip_prefix("E: Version '")
            && let Some((version, rest)) = rest.split_once("' for '")
            && let Some((name, _)) = rest.split_once('\'')
        {
            out.push(format!("{name} (= {version})"));
        } else if let Some(rest) = line.strip_prefix("E: Unable to locate package ") {
            out.push(rest.trim().to_string());
        }
    }
    out.sort();
    out.dedup();
    out
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
        let s = build_script(&b, "x_1.dsc", "/build/x-1");
        assert!(
            s.contains("DEB_BUILD_OPTIONS='x'\\''; touch /pwned; '\\'''"),
            "{s}"
        );
    }

    #[test]
    fn apt_errors_name_the_missing_packages() {
        let log = "E: Version '2.40-1' for 'binutils' was not found\n\
                   E: Unable to locate package nosuch\nother\n";
        assert_eq!(
            missing_packages(log),
            vec!["binutils (= 2.40-1)".to_string(), "nosuch".to_string()]
        );
    }
}
