//! Running a command with a timeout that kills its whole process group and
//! a cap on the captured output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use super::BuildStatus;

/// What a command did.
#[derive(Debug)]
pub struct RunOutput {
    /// How it ended.
    pub status: BuildStatus,
    /// stdout then stderr, capped at the limit (with a note when cut).
    pub log: Vec<u8>,
}

/// Runs `args` in `dir` with `env` added, in its own process group; kills
/// the group at `timeout`. Output beyond `max_log` bytes is discarded.
pub async fn run_command(
    args: &[String],
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    max_log: usize,
) -> RunOutput {
    let mut log = format!("$ {}\n", args.join(" ")).into_bytes();
    let Some((program, rest)) = args.split_first() else {
        log.extend_from_slice(b"no command configured\n");
        return RunOutput {
            status: BuildStatus::BackendError,
            log,
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log.extend_from_slice(format!("cannot start {program}: {e}\n").as_bytes());
            return RunOutput {
                status: BuildStatus::BackendError,
                log,
            };
        }
    };
    let pgid = child.id();
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return RunOutput {
            status: BuildStatus::BackendError,
            log,
        };
    };
    let cap = max_log;
    let read_out = async move { capped_read(&mut stdout, cap).await };
    let read_err = async move { capped_read(&mut stderr, cap).await };
    let waited = tokio::time::timeout(timeout, async {
        let (o, e, status) = tokio::join!(read_out, read_err, child.wait());
        (o, e, status)
    })
    .await;
    match waited {
        Ok((out, err, status)) => {
            append_capped(&mut log, &out, max_log);
            append_capped(&mut log, &err, max_log);
            let ok = status.as_ref().is_ok_and(|s| s.success());
            if let Ok(s) = status {
                log.extend_from_slice(format!("\n[exit: {s}]\n").as_bytes());
            }
            RunOutput {
                status: if ok {
                    BuildStatus::Ok
                } else {
                    BuildStatus::Failed
                },
                log,
            }
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                // Kill the whole group: the command and everything it started.
                let _ = std::process::Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pgid}")])
                    .stderr(Stdio::null())
                    .status();
            }
            log.extend_from_slice(format!("\n[killed after {timeout:?}: timeout]\n").as_bytes());
            RunOutput {
                status: BuildStatus::Timeout,
                log,
            }
        }
    }
}

async fn capped_read<R: tokio::io::AsyncRead + Unpin>(r: &mut R, cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cut = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.len() < cap {
                    let take = n.min(cap - out.len());
                    out.extend_from_slice(&buf[..take]);
                    cut |= take < n;
                } else {
                    cut = true; // keep draining so the child does not block
                }
            }
        }
    }
    (out, cut)
}

fn append_capped(log: &mut Vec<u8>, (bytes, cut): &(Vec<u8>, bool), max: usize) {
    let room = max.saturating_sub(log.len());
    log.extend_from_slice(&bytes[..bytes.len().min(room)]);
    if *cut || bytes.len() > room {
        log.extend_from_slice(format!("\n[log truncated at {max} bytes]\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeouts_kill_the_process_group_and_logs_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        // The child starts a grandchild that would write a file later.
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let out = run_command(
            &["sh".into(), "-c".into(), script],
            dir.path(),
            &[],
            Duration::from_millis(500),
            1 << 20,
        )
        .await;
        assert_eq!(out.status, BuildStatus::Timeout);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!marker.exists(), "the grandchild survived the timeout");

        let out = run_command(
            &[
                "sh".into(),
                "-c".into(),
                "yes vouch | head -c 5000000; exit 3".into(),
            ],
            dir.path(),
            &[],
            Duration::from_secs(30),
            10_000,
        )
        .await;
        assert_eq!(out.status, BuildStatus::Failed);
        assert!(out.log.len() < 11_000, "{}", out.log.len());
        assert!(String::from_utf8_lossy(&out.log).contains("truncated"));
    }
}
