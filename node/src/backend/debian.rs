//! A real Debian rebuild on this machine: unpack the source package
//! (fetched and sha256-checked against `Sources` beforehand), install its
//! build dependencies with `apt-get satisfy`, build with
//! `dpkg-buildpackage -b -uc -us` under `SOURCE_DATE_EPOCH` from the
//! changelog, and hand every `.deb` to the comparison.
//!
//! Debian's snapshot archive is not reachable from here, so the exact
//! environment of a `.buildinfo` cannot be recreated: the build uses the
//! host's current packages, and the log records that environment (`dpkg -l`).
//! Where snapshot.debian.org is reachable, debrebuild belongs here.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use super::{BuildRun, BuildStatus, run_command};
use crate::sync::Job;

/// The backend's version string: the host's dpkg and what it cannot do.
pub fn version() -> String {
    let dpkg = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dpkg"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    format!("dpkg-buildpackage {dpkg}; host environment, no snapshot")
}

/// Rebuilds `job`: its source files are in `input/src/`.
pub async fn build(job: &Job, workdir: &Path, timeout: Duration, max_log: usize) -> BuildRun {
    let deadline = Instant::now() + timeout;
    let output = workdir.join("output");
    let mut log = Vec::new();
    let done = |status, log: Vec<u8>| BuildRun {
        status,
        log,
        output_dir: output.clone(),
    };
    let Some(dsc) = job.source_files.iter().find(|f| f.name.ends_with(".dsc")) else {
        log.extend_from_slice(b"no .dsc for this source in the Sources index\n");
        return done(BuildStatus::BackendError, log);
    };
    let src = workdir.join("input/src");
    let tree = workdir
        .join("build")
        .join(format!("{}-{}", job.source, job.version));
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1))
    };
    let step = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<String>>();

    // Unpack (dpkg-source copies the tarballs next to the tree).
    if let Err(e) = std::fs::create_dir_all(workdir.join("build")) {
        log.extend_from_slice(format!("cannot create the build directory: {e}\n").as_bytes());
        return done(BuildStatus::BackendError, log);
    }
    let dsc_path = src.join(&dsc.name);
    let run = run_command(
        &step(&[
            "dpkg-source",
            "-x",
            &dsc_path.display().to_string(),
            &tree.display().to_string(),
        ]),
        workdir,
        &[],
        left(deadline),
        max_log,
    )
    .await;
    log.extend_from_slice(&run.log);
    if run.status != BuildStatus::Ok {
        return done(run.status, log);
    }

    // Build dependencies from the .dsc.
    let deps = match std::fs::read_to_string(&dsc_path).map(|t| build_depends(&t)) {
        Ok(d) => d,
        Err(e) => {
            log.extend_from_slice(format!("cannot read {}: {e}\n", dsc_path.display()).as_bytes());
            return done(BuildStatus::BackendError, log);
        }
    };
    if !deps.is_empty() {
        let env = vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())];
        // Another apt run (a second rebuild, unattended upgrades) may hold
        // the dpkg lock: wait for it rather than fail.
        let satisfy = step(&[
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=900",
            "satisfy",
            "-y",
            "--no-install-recommends",
            &deps,
        ]);
        let mut run = run_command(&satisfy, workdir, &env, left(deadline), max_log).await;
        if run.status != BuildStatus::Ok {
            // Package lists may be missing or stale.
            log.extend_from_slice(&run.log);
            let update = run_command(
                &step(&["apt-get", "-o", "DPkg::Lock::Timeout=900", "update", "-q"]),
                workdir,
                &env,
                left(deadline),
                max_log,
            )
            .await;
            log.extend_from_slice(&update.log);
            run = run_command(&satisfy, workdir, &env, left(deadline), max_log).await;
        }
        log.extend_from_slice(&run.log);
        if run.status != BuildStatus::Ok {
            log.extend_from_slice(b"the build dependencies could not be installed\n");
            return done(BuildStatus::BackendError, log);
        }
    }

    // SOURCE_DATE_EPOCH from the changelog.
    let epoch = std::process::Command::new("dpkg-parsechangelog")
        .args(["-STimestamp", "-l"])
        .arg(tree.join("debian/changelog"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let Some(epoch) = epoch else {
        log.extend_from_slice(b"cannot read the changelog's timestamp\n");
        return done(BuildStatus::Failed, log);
    };
    log.extend_from_slice(format!("SOURCE_DATE_EPOCH={epoch}\n").as_bytes());
    // The environment actually used, for the record.
    if let Ok(o) = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version} ${Architecture}\n"])
        .output()
    {
        log.extend_from_slice(b"--- build environment (dpkg-query -W) ---\n");
        log.extend_from_slice(&o.stdout[..o.stdout.len().min(max_log / 4)]);
        log.extend_from_slice(b"---\n");
    }
    let env = vec![
        ("SOURCE_DATE_EPOCH".to_string(), epoch),
        ("LC_ALL".to_string(), "C.UTF-8".to_string()),
        ("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string()),
    ];
    let run = run_command(
        &step(&["dpkg-buildpackage", "-b", "-uc", "-us"]),
        &tree,
        &env,
        left(deadline),
        max_log,
    )
    .await;
    log.extend_from_slice(&run.log);
    if run.status != BuildStatus::Ok {
        return done(run.status, log);
    }
    // Every .deb the build produced, next to the tree.
    let parent = workdir.join("build");
    if let Ok(entries) = std::fs::read_dir(&parent) {
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

/// `Build-Depends`, `Build-Depends-Arch` and `Build-Depends-Indep` of a
/// `.dsc`, joined for `apt-get satisfy`.
pub fn build_depends(dsc: &str) -> String {
    // A signed .dsc wraps the stanza in an OpenPGP cleartext signature.
    let body: String = dsc
        .lines()
        .skip_while(|l| {
            l.starts_with("-----BEGIN PGP SIGNED MESSAGE") || l.starts_with("Hash:") || l.is_empty()
        })
        .take_while(|l| !l.starts_with("-----BEGIN PGP SIGNATURE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let Ok(p) = deb822_fast::Paragraph::from_str(body.trim()) else {
        return String::new();
    };
    ["Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep"]
        .iter()
        .filter_map(|f| p.get(f))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_depends_of_the_real_dsc() {
        let dsc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/debian/hello_2.10-3.dsc"
        ))
        .unwrap();
        assert_eq!(
            super::build_depends(&dsc),
            "debhelper-compat (= 13), help2man, texinfo"
        );
    }
}
