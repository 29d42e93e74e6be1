//! Running a backend's own command isolated from the node (the
//! `archlinux-repro` backend's `isolation = "namespace"`).
//!
//! The command runs as root of the build user's namespace (see
//! [`super::namespace`]) — recipes such as `repro` expect root — in fresh
//! mount, PID, IPC, UTS and (unless `network = true`) network namespaces,
//! chrooted into a root made for the run: an empty tmpfs with the host's
//! programs (`/usr`, `/etc`, `/opt`, and `/bin`, `/lib`... as they are)
//! bound read-only, the configured `binds` read-only at their own paths,
//! fresh `/tmp`, `/var/tmp`, `/run`, `/dev` and `/proc`, the published
//! artifacts read-only at `/vouch/input` and an empty `/vouch/output`.
//! Nothing else of the host is there: not the data directory (a
//! configuration that would show it is refused), not `/home`, `/root`,
//! `/var` or `/srv`, not the daemon's environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::debian::Isolation;
use super::stage::Stage;
use super::{BuildStatus, RunOutput, namespace};

/// How a command backend is isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// `namespace` (default) or `none` (on the host, as the daemon's
    /// user: only for a dedicated machine).
    #[serde(default)]
    pub isolation: Isolation,
    /// When the daemon runs as root: the user whose sub-ids run the
    /// command (see the debian backend).
    #[serde(default = "default_build_user")]
    pub build_user: String,
    /// Where runs are staged, outside the data directory.
    #[serde(default = "std::env::temp_dir")]
    pub staging: PathBuf,
    /// Whether the command may reach the network (a recipe that fetches
    /// its sources or build dependencies needs it).
    #[serde(default)]
    pub network: bool,
    /// Host paths shown read-only at the same place (the recipe's own
    /// files, a source tree).
    #[serde(default)]
    pub binds: Vec<PathBuf>,
}

fn default_build_user() -> String {
    "vouch-build".into()
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            isolation: Isolation::Namespace,
            build_user: default_build_user(),
            staging: std::env::temp_dir(),
            network: false,
            binds: Vec::new(),
        }
    }
}

/// Host directories shown read-only.
const HOST: [&str; 3] = ["/usr", "/etc", "/opt"];

/// `sandbox.sh STAGE BIND... -- COMMAND...`.
const INNER: &str = r#"set -eu
stage=$1; shift
r=$stage/root
mkdir "$r"
mount -t tmpfs -o mode=755 vouch-root "$r"
ro() {
    mkdir -p "$r$1"
    mount --rbind "$1" "$r$1"
    mount -o remount,bind,ro "$r$1"
}
for d in /usr /etc /opt; do
    if [ -d "$d" ]; then ro "$d"; fi
done
for l in /bin /sbin /lib /lib32 /lib64 /libx32; do
    if [ -L "$l" ]; then ln -s "$(readlink "$l")" "$r$l"
    elif [ -d "$l" ]; then ro "$l"; fi
done
mkdir -p "$r/dev" "$r/proc" "$r/tmp" "$r/var/tmp" "$r/run" "$r/vouch/input" "$r/vouch/output"
for t in /tmp /var/tmp /run; do
    mount -t tmpfs -o mode=1777,nosuid,nodev vouch-tmp "$r$t"
done
while [ "$1" != "--" ]; do ro "$1"; shift; done
shift
dev_and_proc "$r"
mount --bind "$stage/src" "$r/vouch/input"
mount -o remount,bind,ro "$r/vouch/input"
mount --bind "$stage/built" "$r/vouch/output"
exec chroot "$r" "$@"
"#;

/// Runs `command` (whose arguments may name `/vouch/input/...` and
/// `/vouch/output`) on the files of `input`; what it leaves in
/// `/vouch/output` is copied to `output`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    settings: &SandboxSettings,
    command: &[String],
    env: &[(String, String)],
    input: &Path,
    output: &Path,
    workdir: &Path,
    timeout: Duration,
    max_log: usize,
) -> Result<RunOutput, String> {
    // The work directory is in the data directory: nothing shown to the
    // command may contain it.
    let data = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    for shown in HOST
        .iter()
        .map(PathBuf::from)
        .chain(settings.binds.iter().cloned())
    {
        let shown = shown.canonicalize().unwrap_or(shown);
        if data.starts_with(&shown) {
            return Err(format!(
                "{} would be visible to the build (it is under {}): move the data directory \
                 or change `binds`",
                data.display(),
                shown.display()
            ));
        }
        if !shown.is_absolute() {
            return Err(format!(
                "binds: {} is not an absolute path",
                shown.display()
            ));
        }
    }
    let stage = Stage::new(&settings.staging, &settings.build_user, Some(input), &[])?;
    let inner = stage.write(
        "vouch-sandbox.sh",
        &format!("{}{INNER}", namespace::DEV_AND_PROC),
    )?;
    let mut ns = vec![
        "unshare".to_string(),
        "--mount".into(),
        "--pid".into(),
        "--fork".into(),
        "--ipc".into(),
        "--uts".into(),
        "--propagation".into(),
        "private".into(),
    ];
    if !settings.network {
        ns.push("--net".into());
    }
    ns.extend([
        "--".into(),
        "sh".into(),
        inner.display().to_string(),
        stage.dir.path().display().to_string(),
    ]);
    ns.extend(settings.binds.iter().map(|b| b.display().to_string()));
    ns.push("--".into());
    ns.extend([
        "env".into(),
        "-i".into(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "HOME=/tmp".into(),
        "LANG=C.UTF-8".into(),
    ]);
    ns.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    ns.extend(command.iter().cloned());
    let run = namespace::run_as_root(&stage, &ns, timeout, max_log).await?;
    if run.status == BuildStatus::Ok
        && let (_, Some(e)) = stage.collect(output, |_| true)
    {
        return Err(e);
    }
    Ok(run)
}
