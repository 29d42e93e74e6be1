//! Running a build in user, mount and PID namespaces, as an unprivileged
//! user, on a throw-away overlay of a cached build environment.
//!
//! The environment (see [`super::environment`]) was made by `mmdebstrap
//! --mode=unshare`, so its files belong to the build user's first 65,536
//! sub-ids: root inside maps to the first of them. The driver makes a user
//! namespace with that mapping plus the build user itself (inside as uid
//! 65536, so the staging directory stays writable), enters it as root,
//! and in fresh mount and PID namespaces mounts an overlay whose lower
//! layer is the environment and whose upper layer is in the stage: the
//! cached environment is never written. Only the source files and the build
//! script are copied in; the `.deb`s are copied out. The build itself runs
//! as `nobody` in further PID, network, IPC and UTS namespaces (see the
//! build script in [`super::debian`]). Nothing here needs root on the host:
//! `newuidmap`/`newgidmap` (package `uidmap`) grant the sub-id ranges of
//! `/etc/subuid` and `/etc/subgid`.

use std::path::Path;
use std::time::Duration;

use super::stage::Stage;
use super::{RunOutput, run_command};

/// `driver.sh STAGE COMMAND...`: runs COMMAND as root of the build user
/// namespace.
const DRIVER: &str = r#"#!/bin/sh
set -eu
stage=$1; shift
uid=$(id -u) gid=$(id -g) name=$(id -un)
range() {
    awk -F: -v u="$name" -v i="$uid" '($1==u||$1==i) && $3>=65536 {print $2; exit}' "$1"
}
subuid=$(range /etc/subuid) subgid=$(range /etc/subgid)
if [ -z "$subuid" ] || [ -z "$subgid" ]; then
    echo "vouch: $name has no range of 65536 sub-ids in /etc/subuid and /etc/subgid (see README, Isolation)" >&2
    exit 125
fi
unshare --user -- sleep 86400 &
holder=$!
trap 'kill $holder 2>/dev/null || true' EXIT
while [ "$(readlink /proc/$holder/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do
    kill -0 $holder 2>/dev/null || { echo "vouch: cannot create a user namespace" >&2; exit 125; }
    sleep 0.01
done
newuidmap $holder 0 "$subuid" 65536 65536 "$uid" 1
newgidmap $holder 0 "$subgid" 65536 65536 "$gid" 1
nsenter --target $holder --user --setuid 0 --setgid 0 -- "$@"
"#;

/// A shell function for the scripts run in the namespace: a fresh `/dev`
/// (a tmpfs with the host's harmless devices bound in) and `/proc` under
/// the root `$1`.
pub const DEV_AND_PROC: &str = r#"dev_and_proc() {
    mkdir -p "$1/dev" "$1/proc"
    mount -t tmpfs -o mode=755,nosuid vouch-dev "$1/dev"
    for d in null zero full random urandom tty; do
        : > "$1/dev/$d"
        mount --bind "/dev/$d" "$1/dev/$d"
    done
    ln -s /proc/self/fd "$1/dev/fd"
    ln -s /proc/self/fd/0 "$1/dev/stdin"
    ln -s /proc/self/fd/1 "$1/dev/stdout"
    ln -s /proc/self/fd/2 "$1/dev/stderr"
    mkdir "$1/dev/shm" "$1/dev/pts"
    mount -t tmpfs -o nosuid,nodev vouch-shm "$1/dev/shm"
    mount -t proc proc "$1/proc"
}
"#;

/// `inner.sh ENV STAGE PARENT`: in fresh mount and PID namespaces, builds
/// on an overlay of ENV and copies the files the build left in PARENT (the
/// parent of the recorded build path) to `STAGE/built`.
const INNER: &str = r#"set -eu
env=$1 stage=$2 parent=$3
r=$stage/root
mkdir "$stage/upper" "$stage/work" "$r"
mount -t overlay vouch-build -o "lowerdir=$env,upperdir=$stage/upper,workdir=$stage/work" "$r"
dev_and_proc "$r"
mkdir -p "$r/vouch/src"
cp "$stage"/src/* "$r/vouch/src/"
cp "$stage/vouch-build.sh" "$r/vouch/"
status=0
chroot "$r" /bin/sh /vouch/vouch-build.sh || status=$?
# Every process of the build is gone with its PID namespace: what is
# left cannot change while it is copied. Links are not followed.
for f in "$r$parent"/*.deb "$r$parent"/*.buildinfo "$r$parent"/*.changes; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then cp "$f" "$stage/built/"; fi
done
chown -R 65536:65536 "$stage/built"
exit $status
"#;

fn driver(stage: &Stage, command: &[String]) -> Result<Vec<String>, String> {
    let path = stage.write("vouch-driver.sh", DRIVER)?;
    let mut args = stage.runner.clone();
    args.extend(["sh".into(), path.display().to_string()]);
    args.push(stage.dir.path().display().to_string());
    args.extend(command.iter().cloned());
    Ok(args)
}

/// Runs the staged build script (`vouch-build.sh`) on an overlay of `env`.
pub async fn build(
    stage: &Stage,
    env: &Path,
    parent: &str,
    timeout: Duration,
    max_log: usize,
) -> Result<RunOutput, String> {
    let inner = stage.write("vouch-inner.sh", &format!("{DEV_AND_PROC}{INNER}"))?;
    let args = driver(
        stage,
        &[
            "unshare".into(),
            "--mount".into(),
            "--pid".into(),
            "--fork".into(),
            "--propagation".into(),
            "private".into(),
            "--".into(),
            "sh".into(),
            inner.display().to_string(),
            env.display().to_string(),
            stage.dir.path().display().to_string(),
            parent.into(),
        ],
    )?;
    let run = run_command(&args, stage.dir.path(), &[], timeout, max_log).await;
    // What the build wrote belongs to sub-ids: a daemon that is not root
    // removes it from inside the namespace.
    if !super::stage::is_root() {
        let _ = remove(stage, &[stage.path("upper"), stage.path("work")]).await;
    }
    Ok(run)
}

/// Runs `command` as root of the build user namespace (for example `tar`
/// over an environment).
pub async fn run_as_root(
    stage: &Stage,
    command: &[String],
    timeout: Duration,
    max_log: usize,
) -> Result<RunOutput, String> {
    let args = driver(stage, command)?;
    Ok(run_command(&args, stage.dir.path(), &[], timeout, max_log).await)
}

/// Removes paths owned by the build user's sub-ids.
pub async fn remove(stage: &Stage, paths: &[std::path::PathBuf]) -> Result<(), String> {
    let mut command = vec!["rm".to_string(), "-rf".into(), "--".into()];
    command.extend(paths.iter().map(|p| p.display().to_string()));
    let run = run_as_root(stage, &command, Duration::from_secs(600), 1 << 16).await?;
    match run.status {
        super::BuildStatus::Ok => Ok(()),
        _ => Err(String::from_utf8_lossy(&run.log).into_owned()),
    }
}
