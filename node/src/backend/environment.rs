//! The build environment a `.buildinfo` records, assembled once and kept.
//!
//! `mmdebstrap --mode=unshare --variant=apt --include=NAME=VERSION,...`
//! installs exactly the recorded `Installed-Build-Depends` from the
//! configured mirrors (apt checks every package against the archive's
//! signed indexes). The result is kept under `CACHE/environments/KEY`,
//! where KEY is the sha256 of everything that went into it (architecture,
//! release, components, mirrors, the exact package list), so a rebuild of
//! another package with the same recorded environment, or of the same one
//! again, starts at once. Builds never write to it: they run on an overlay
//! (see [`super::namespace`]). The oldest environments beyond
//! `max_environments` are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vouch_attest::Digest;

use super::buildinfo::Buildinfo;
use super::debian::DebianBackend;
use super::stage::Stage;
use super::{BuildStatus, namespace, run_command};

/// What went into an environment: its cache key is the sha256 of this.
pub fn key(backend: &DebianBackend, info: &Buildinfo, release: &str) -> String {
    let mut text = format!(
        "vouch-environment-v1\narchitecture {}\nrelease {release}\ncomponents {}\n",
        info.build_architecture,
        backend.components.join(",")
    );
    for m in &backend.mirrors {
        text.push_str(&format!("mirror {m}\n"));
    }
    let mut installed = info.installed.clone();
    installed.sort();
    for (name, version) in installed {
        text.push_str(&format!("package {name} {version}\n"));
    }
    Digest::of(text.as_bytes()).to_hex()
}

/// Where environments are kept (none without a cache).
pub fn environments_dir(backend: &DebianBackend) -> Option<PathBuf> {
    backend.cache.as_ref().map(|c| c.join("environments"))
}

/// Where downloaded packages are kept (none without a cache).
pub fn archives_dir(backend: &DebianBackend) -> Option<PathBuf> {
    backend.cache.as_ref().map(|c| c.join("archives"))
}

/// Makes the environment `info` records, or takes it from the cache; its
/// root directory. `Err(Unavailable)` when apt could not have an exact version (the log
/// names the packages); `Err(BackendError)` when mmdebstrap could not run.
pub async fn prepare(
    backend: &DebianBackend,
    info: &Buildinfo,
    release: &str,
    stage: &Stage,
    timeout: Duration,
    max_log: usize,
    log: &mut Vec<u8>,
) -> Result<PathBuf, BuildStatus> {
    let key = key(backend, info, release);
    let (target, building) = match environments_dir(backend) {
        Some(envs) => {
            let ready = envs.join(&key);
            if ready.join("usr").is_dir() {
                mark_used(&envs, &key);
                log.extend_from_slice(format!("environment {key}: from the cache\n").as_bytes());
                return Ok(ready);
            }
            let building = envs.join(format!(
                ".{key}.{}",
                stage
                    .dir
                    .path()
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("new")
            ));
            (ready, Some(building))
        }
        None => (stage.path("environment"), None),
    };
    let out = building.clone().unwrap_or_else(|| target.clone());
    let include: Vec<String> = info
        .installed
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let mut args = stage.runner.clone();
    args.extend([
        backend.mmdebstrap.clone(),
        "--mode=unshare".into(),
        "--variant=apt".into(),
        format!("--architectures={}", info.build_architecture),
        format!("--components={}", backend.components.join(",")),
        format!("--include={}", include.join(",")),
    ]);
    if let Some(archives) = archives_dir(backend) {
        let archives = super::debian::quote(&archives.display().to_string());
        args.extend([
            "--skip=download/empty".to_string(),
            "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\"".into(),
            format!("--setup-hook=sync-in {archives} /var/cache/apt/archives"),
            format!("--customize-hook=sync-out /var/cache/apt/archives {archives}"),
        ]);
    }
    args.push(release.into());
    args.push(out.display().to_string());
    args.extend(backend.mirrors.iter().cloned());
    log.extend_from_slice(
        format!(
            "environment {key}: assembling {} packages for {}\n",
            info.installed.len(),
            info.build_architecture
        )
        .as_bytes(),
    );
    let started = Instant::now();
    let run = run_command(&args, stage.dir.path(), &[], timeout, max_log).await;
    log.extend_from_slice(&run.log);
    if run.status != BuildStatus::Ok {
        if let Some(b) = &building {
            let _ = namespace::remove(stage, std::slice::from_ref(b)).await;
        }
        if run.status != BuildStatus::Failed {
            return Err(run.status);
        }
        let text = String::from_utf8_lossy(&run.log);
        let missing = missing_packages(&text);
        if missing.is_empty() {
            log.extend_from_slice(b"the recorded environment could not be assembled (see above)\n");
        } else {
            log.extend_from_slice(
                format!(
                    "the recorded environment could not be assembled: not on the configured mirrors: {}\n",
                    missing.join(", ")
                )
                .as_bytes(),
            );
        }
        return Err(BuildStatus::Unavailable);
    }
    log.extend_from_slice(
        format!(
            "environment {key}: assembled in {:.1} s\n",
            started.elapsed().as_secs_f64()
        )
        .as_bytes(),
    );
    if let Some(b) = building {
        // Another worker may have made the same one meanwhile: keep one.
        if std::fs::rename(&b, &target).is_err() {
            let _ = namespace::remove(stage, &[b]).await;
        }
        if let Some(envs) = environments_dir(backend) {
            mark_used(&envs, &key);
            evict(backend, &envs, stage).await;
        }
    }
    Ok(target)
}

/// Notes that environment `key` was used now: the least recently used are
/// removed first.
fn mark_used(envs: &Path, key: &str) {
    let _ = std::fs::write(envs.join(format!("{key}.used")), b"");
}

/// Removes the least recently used environments beyond the limit.
async fn evict(backend: &DebianBackend, envs: &Path, stage: &Stage) {
    let Ok(entries) = std::fs::read_dir(envs) else {
        return;
    };
    let mut used: Vec<(std::time::SystemTime, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let key = name.strip_suffix(".used")?.to_string();
            let at = e.metadata().ok()?.modified().ok()?;
            Some((at, key))
        })
        .collect();
    used.sort();
    let extra = used.len().saturating_sub(backend.max_environments.max(1));
    for (_, key) in used.into_iter().take(extra) {
        let _ = std::fs::remove_file(envs.join(format!("{key}.used")));
        let _ = namespace::remove(stage, &[envs.join(&key)]).await;
    }
}

/// The packages apt said it could not find, from its error lines.
pub fn missing_packages(log: &str) -> Vec<String> {
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
    fn apt_errors_name_the_missing_packages() {
        let log = "E: Version '2.40-1' for 'binutils' was not found\n\
                   E: Unable to locate package nosuch\nother\n";
        assert_eq!(
            missing_packages(log),
            vec!["binutils (= 2.40-1)".to_string(), "nosuch".to_string()]
        );
    }

    #[test]
    fn the_key_names_every_input() {
        let b = DebianBackend::default();
        let info = Buildinfo {
            source: "x".into(),
            version: "1".into(),
            build_architecture: "amd64".into(),
            build_path: None,
            environment: vec![],
            installed: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
            files: vec![],
        };
        let k = key(&b, &info, "bookworm");
        let mut other = info.clone();
        other.installed.reverse();
        assert_eq!(key(&b, &other, "bookworm"), k, "order does not matter");
        other.installed[0].1 = "3".into();
        assert_ne!(key(&b, &other, "bookworm"), k);
        assert_ne!(key(&b, &info, "trixie"), k);
        let mut m = b.clone();
        m.mirrors.push("http://example.org/debian".into());
        assert_ne!(key(&m, &info, "bookworm"), k);
    }
}
