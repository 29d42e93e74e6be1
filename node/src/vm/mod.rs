//! Whether this host can run build guests, and how: `vouchd vm check` boots
//! a tiny guest (a kernel and an initramfs holding only a static busybox
//! that prints a marker on the serial console and powers off) under each
//! accelerator asked for, with a short timeout, and says what happened. On
//! a host that is itself a virtual machine without nested virtualization,
//! `/dev/kvm` may open while a KVM guest never gets past the firmware: only
//! a guest that really boots counts.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

pub mod image;

/// Printed by the guest's init when it is up.
pub const MARKER: &str = "vouch-guest-up";

/// How guests are accelerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Accel {
    /// Hardware virtualization only.
    #[default]
    Kvm,
    /// qemu's software emulation only (slow; verdicts say so).
    Tcg,
    /// KVM when it really works, else software emulation.
    KvmOrTcg,
}

/// What one boot did.
#[derive(Debug, Clone, Serialize)]
pub struct Boot {
    /// `kvm` or `tcg`.
    pub accel: &'static str,
    /// The guest printed the marker.
    pub works: bool,
    /// Seconds until the marker (or until given up).
    pub seconds: f64,
    /// Why it does not work, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The kernel booted.
    pub kernel: String,
    /// One boot per accelerator tried.
    pub boots: Vec<Boot>,
    /// The accelerator builds would use, if any.
    pub usable: Option<&'static str>,
}

/// The newest `/boot/vmlinuz-*`, the default guest kernel.
pub fn default_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Appends one entry of the cpio "newc" format (what the kernel unpacks
/// as an initramfs).
pub(crate) fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let header = format!(
        "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
         {z:08x}{z:08x}{z:08x}{z:08x}{namesize:08x}{z:08x}",
        uid = 0,
        gid = 0,
        nlink = 1,
        mtime = 0,
        size = data.len(),
        namesize = name.len() + 1,
        z = 0,
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The check guest's initramfs: `/bin/busybox` (static) and `/init`.
pub fn check_initramfs(busybox: &Path) -> std::io::Result<Vec<u8>> {
    let bb = std::fs::read(busybox)?;
    let init = format!("#!/bin/busybox sh\n/bin/busybox echo {MARKER}\n/bin/busybox poweroff -f\n");
    let mut out = Vec::new();
    cpio_entry(&mut out, 1, "bin", 0o040_755, &[]);
    cpio_entry(&mut out, 2, "bin/busybox", 0o100_755, &bb);
    cpio_entry(&mut out, 3, "init", 0o100_755, init.as_bytes());
    cpio_entry(&mut out, 4, "TRAILER!!!", 0, &[]);
    Ok(out)
}

/// The qemu arguments every guest gets: the accelerator, memory and CPUs,
/// no default devices (so no network), no reboot, no display, the serial
/// console on stdio, and the kernel and initramfs with `append` on the
/// kernel command line.
pub fn guest_args(
    accel: &str,
    memory_mib: u32,
    cpus: u32,
    kernel: &Path,
    initrd: &Path,
    append: &str,
) -> Vec<String> {
    [
        "-accel",
        accel,
        "-m",
        &memory_mib.to_string(),
        "-smp",
        &cpus.max(1).to_string(),
        "-nodefaults",
        "-no-reboot",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-kernel",
        &kernel.display().to_string(),
        "-initrd",
        &initrd.display().to_string(),
        "-append",
        &format!("console=ttyS0 panic=-1 quiet {append}"),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// Boots the check guest once under `accel` (`kvm` or `tcg`).
async fn boot(
    qemu: &str,
    accel: &'static str,
    kernel: &Path,
    initrd: &Path,
    append: &str,
    timeout: Duration,
) -> Boot {
    let start = Instant::now();
    let fail = |reason: String| Boot {
        accel,
        works: false,
        seconds: start.elapsed().as_secs_f64(),
        reason: Some(reason),
    };
    if accel == "kvm"
        && let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
    {
        return fail(format!("/dev/kvm cannot be opened: {e}"));
    }
    let mut cmd = tokio::process::Command::new(qemu);
    cmd.args(guest_args(accel, 256, 1, kernel, initrd, append))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot start {qemu}: {e} (apt-get install qemu-system-x86)"
            ));
        }
    };
    let Some(mut stdout) = child.stdout.take() else {
        return fail("no console".into());
    };
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stdout.read(&mut buf)).await {
            Err(_) => {
                let _ = child.kill().await;
                let hint = if accel == "kvm" {
                    " (a KVM guest that never boots: is this host itself a virtual machine \
                     without nested virtualization?)"
                } else {
                    ""
                };
                return fail(format!(
                    "the guest did not come up within {} s{hint}",
                    timeout.as_secs()
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.len() > 1 << 20 {
                    seen.drain(..seen.len() - 4096);
                }
                if String::from_utf8_lossy(&seen).contains(MARKER) {
                    let seconds = start.elapsed().as_secs_f64();
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    let _ = child.kill().await;
                    return Boot {
                        accel,
                        works: true,
                        seconds,
                        reason: None,
                    };
                }
            }
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err).await;
    }
    let _ = child.wait().await;
    fail(format!(
        "qemu exited before the guest came up: {}",
        err.lines().last().unwrap_or("no message")
    ))
}

/// Checks the accelerators `accel` allows, booting `kernel`.
pub async fn check(
    qemu: &str,
    kernel: &Path,
    busybox: &Path,
    accel: Accel,
    timeout: Duration,
) -> std::io::Result<Report> {
    let dir = tempfile::tempdir()?;
    let initrd = dir.path().join("check.cpio");
    std::fs::File::create(&initrd)?.write_all(&check_initramfs(busybox)?)?;
    Ok(check_guest(qemu, kernel, &initrd, "", accel, timeout).await)
}

/// Boots `kernel` with `initrd` (whose init prints the marker and powers
/// off, given `append` on its command line) under the accelerators `accel`
/// allows.
pub async fn check_guest(
    qemu: &str,
    kernel: &Path,
    initrd: &Path,
    append: &str,
    accel: Accel,
    timeout: Duration,
) -> Report {
    let mut boots = Vec::new();
    if matches!(accel, Accel::Kvm | Accel::KvmOrTcg) {
        boots.push(boot(qemu, "kvm", kernel, initrd, append, timeout).await);
    }
    let kvm_works = boots.iter().any(|b| b.works);
    if accel == Accel::Tcg || (accel == Accel::KvmOrTcg && !kvm_works) {
        // Software emulation boots a kernel several times slower.
        boots.push(boot(qemu, "tcg", kernel, initrd, append, timeout * 4).await);
    }
    let usable = boots.iter().find(|b| b.works).map(|b| b.accel);
    Report {
        kernel: kernel.display().to_string(),
        boots,
        usable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_aligned_newc() {
        let mut out = Vec::new();
        cpio_entry(&mut out, 1, "init", 0o100_755, b"abc");
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        // 110-byte header, "init\0", padded to 4, data padded to 4.
        assert_eq!(out.len(), 116 + 4);
        assert_eq!(&out[110..115], b"init\0");
    }
}
