//! Build guest images: `vouchd vm build-image` makes one from Debian's
//! packages, and each build boots it.
//!
//! An image is one file, a tar archive (entries in this order, all with
//! mtime 0, so the same packages give the same bytes and the same sha256):
//!
//! - `manifest.json`: what it is made of (distribution, release, the exact
//!   kernel and busybox package versions, the runner's version);
//! - `vmlinuz`: the kernel of the kernel package (`linux-image-cloud-amd64`
//!   by default);
//! - `initrd.cpio`: the whole guest root file system, loaded into memory at
//!   boot: a static busybox (`busybox-static`), the kernel's virtio modules
//!   and `/init`, the in-guest runner.
//!
//! The guest's root lives in memory and is thrown away at power-off: each
//! build starts from the same image, and nothing of a build survives it.
//! The image's sha256 is named in every verdict built with it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vouch_attest::Digest;

use crate::backend::stage::Stage;
use crate::backend::{BuildStatus, run_command};

/// The runner's version, recorded in the manifest.
pub const RUNNER_VERSION: &str = "1";

/// Largest kernel and initramfs read from an image.
const MAX_PART: u64 = 256 << 20;

/// Kernel modules the runner loads, in order, when the kernel has them as
/// modules (a kernel with them built in needs none).
const MODULES: [&str; 6] = [
    "virtio",
    "virtio_ring",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
];

/// The in-guest runner (`/init`). With `vouch.mode=check` on the kernel
/// command line it only says it is up. Otherwise the disks are: `vda` the
/// job (a tar of `vouch-build.sh`, `src/` and `parent`), `vdb` the build
/// environment (a tar of its root), `vdc` the output (the runner writes a
/// tar of the `.deb`s the build left beside its tree and of
/// `vouch-exit-status`).
const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /proc /sys /dev /tmp /root
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
for m in MODULES; do
    [ -f /lib/vouch-modules/$m.ko ] && $B insmod /lib/vouch-modules/$m.ko
done
echo MARKER
if $B grep -q vouch.mode=check /proc/cmdline; then $B poweroff -f; fi
finish() {
    echo "vouch-guest-exit $1"
    $B sync
    $B poweroff -f
}
n=0
while [ ! -b /dev/vdc ] && [ $n -lt 100 ]; do $B sleep 0.1; n=$((n+1)); done
[ -b /dev/vdc ] || { echo "vouch: the guest has no build disks"; finish 125; }
$B mount -t tmpfs -o size=95%,mode=755 root /root || finish 125
$B tar -x -f /dev/vdb -C /root || { echo "vouch: cannot unpack the environment"; finish 125; }
$B mkdir -p /root/vouch
$B tar -x -f /dev/vda -C /root/vouch || { echo "vouch: cannot unpack the job"; finish 125; }
$B mount --bind /dev /root/dev
$B mount -t proc proc /root/proc
$B mount -t tmpfs shm /root/dev/shm
parent=$($B cat /root/vouch/parent)
$B chroot /root /bin/sh /vouch/vouch-build.sh
status=$?
$B mkdir -p /tmp/out
for f in "/root$parent"/*.deb; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then $B cp "$f" /tmp/out/; fi
done
echo $status > /tmp/out/vouch-exit-status
$B tar -c -f /dev/vdc -C /tmp/out .
finish $status
"#;

/// What an image is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `debian`.
    pub distribution: String,
    /// e.g. `bookworm`.
    pub release: String,
    /// The kernel package and version it came from.
    pub kernel: String,
    /// The busybox package and version.
    pub busybox: String,
    /// [`RUNNER_VERSION`].
    pub runner: String,
    /// Kernel modules in the initramfs.
    pub modules: Vec<String>,
}

/// How to build an image.
#[derive(Debug, Clone)]
pub struct ImageRecipe {
    /// Only `debian` so far.
    pub distribution: String,
    /// e.g. `bookworm`.
    pub release: String,
    /// The archive the packages come from.
    pub mirror: String,
    /// The kernel package.
    pub kernel_package: String,
    /// The `mmdebstrap` command.
    pub mmdebstrap: String,
    /// Where it is staged.
    pub staging: PathBuf,
    /// Who runs `mmdebstrap` when this process is root.
    pub build_user: String,
}

impl Default for ImageRecipe {
    /// Debian bookworm's cloud kernel from deb.debian.org.
    fn default() -> Self {
        ImageRecipe {
            distribution: "debian".into(),
            release: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            kernel_package: "linux-image-cloud-amd64".into(),
            mmdebstrap: "mmdebstrap".into(),
            staging: std::env::temp_dir(),
            build_user: "vouch-build".into(),
        }
    }
}

/// Builds an image from the recipe's packages and writes it to `out`.
/// Returns its manifest and sha256.
pub async fn build(recipe: &ImageRecipe, out: &Path) -> Result<(Manifest, String), String> {
    if recipe.distribution != "debian" {
        return Err(format!(
            "no guest image recipe for `{}`: only `debian` so far",
            recipe.distribution
        ));
    }
    let stage = Stage::new(&recipe.staging, &recipe.build_user, None, &[])?;
    let packages = stage.path("packages.tar");
    let mut args = stage.runner.clone();
    args.extend([
        recipe.mmdebstrap.clone(),
        "--mode=unshare".into(),
        "--variant=extract".into(),
        format!("--include={},busybox-static", recipe.kernel_package),
        // What was fetched, with versions, into the archive itself.
        "--extract-hook=cd \"$1/var/cache/apt/archives\" && ls *.deb > \"$1/vouch-packages.list\""
            .into(),
        recipe.release.clone(),
        packages.display().to_string(),
        recipe.mirror.clone(),
    ]);
    let run = run_command(
        &args,
        stage.dir.path(),
        &[],
        Duration::from_secs(1800),
        1 << 20,
    )
    .await;
    if run.status != BuildStatus::Ok {
        return Err(format!(
            "mmdebstrap could not fetch the packages:\n{}",
            String::from_utf8_lossy(&run.log)
        ));
    }
    let file =
        std::fs::File::open(&packages).map_err(|e| format!("{}: {e}", packages.display()))?;
    let parts = Parts::read(file)?;
    let (manifest, bytes) = parts.image(recipe)?;
    let sha = Digest::of(&bytes).to_hex();
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((manifest, sha))
}

/// The files an image is made from, found in the extracted packages.
#[derive(Default)]
struct Parts {
    kernel: Option<(String, Vec<u8>)>,
    busybox: Option<Vec<u8>>,
    modules: Vec<(String, Vec<u8>)>,
    /// `Package Version` of what was extracted, from the packages' data.
    versions: Vec<(String, String)>,
}

impl Parts {
    fn read(file: std::fs::File) -> Result<Parts, String> {
        let mut parts = Parts::default();
        let mut archive = tar::Archive::new(file);
        let entries = archive.entries().map_err(|e| e.to_string())?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("the package archive: {e}"))?;
            if !entry.header().entry_type().is_file() || entry.size() > MAX_PART {
                continue;
            }
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            let name = path.to_string_lossy().to_string();
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            let read = |entry: &mut tar::Entry<'_, std::fs::File>| -> Result<Vec<u8>, String> {
                let mut v = Vec::new();
                entry.read_to_end(&mut v).map_err(|e| e.to_string())?;
                Ok(v)
            };
            if name.contains("boot/vmlinuz-") {
                parts.kernel = Some((
                    base.trim_start_matches("vmlinuz-").to_string(),
                    read(&mut entry)?,
                ));
            } else if name.ends_with("bin/busybox") {
                parts.busybox = Some(read(&mut entry)?);
            } else if name.contains("/modules/")
                && let Some(m) = base.strip_suffix(".ko")
                && MODULES.contains(&m)
            {
                parts.modules.push((m.to_string(), read(&mut entry)?));
            } else if base == "vouch-packages.list" {
                let text = String::from_utf8_lossy(&read(&mut entry)?).into_owned();
                parts.versions = fetched(&text);
            }
        }
        Ok(parts)
    }

    fn image(self, recipe: &ImageRecipe) -> Result<(Manifest, Vec<u8>), String> {
        let (kernel_release, kernel) = self
            .kernel
            .ok_or_else(|| format!("{} has no /boot/vmlinuz-*", recipe.kernel_package))?;
        let busybox = self.busybox.ok_or("busybox-static has no /bin/busybox")?;
        let version = |prefix: &str| {
            self.versions
                .iter()
                .find(|(n, _)| n.starts_with(prefix))
                .map(|(n, v)| format!("{n} {v}"))
        };
        let mut modules = self.modules;
        modules.sort_by_key(|(m, _)| MODULES.iter().position(|x| x == m));
        modules.dedup_by(|a, b| a.0 == b.0);
        let manifest = Manifest {
            distribution: recipe.distribution.clone(),
            release: recipe.release.clone(),
            kernel: version("linux-image-")
                .unwrap_or_else(|| format!("linux-image {kernel_release}")),
            busybox: version("busybox-static").unwrap_or_else(|| "busybox-static".into()),
            runner: RUNNER_VERSION.into(),
            modules: modules.iter().map(|(m, _)| m.clone()).collect(),
        };
        let init = INIT
            .replace("MODULES", &MODULES.join(" "))
            .replace("MARKER", super::MARKER);
        let mut cpio = Vec::new();
        let mut ino = 1;
        let mut entry = |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
            super::cpio_entry(out, ino, name, mode, data);
            ino += 1;
        };
        entry(&mut cpio, "bin", 0o040_755, &[]);
        entry(&mut cpio, "bin/busybox", 0o100_755, &busybox);
        entry(&mut cpio, "lib", 0o040_755, &[]);
        entry(&mut cpio, "lib/vouch-modules", 0o040_755, &[]);
        for (m, data) in &modules {
            entry(
                &mut cpio,
                &format!("lib/vouch-modules/{m}.ko"),
                0o100_644,
                data,
            );
        }
        entry(&mut cpio, "init", 0o100_755, init.as_bytes());
        entry(&mut cpio, "TRAILER!!!", 0, &[]);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        let mut out = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", &json),
            ("vmlinuz", &kernel),
            ("initrd.cpio", &cpio),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            out.append_data(&mut h, name, data.as_slice())
                .map_err(|e| e.to_string())?;
        }
        let bytes = out.into_inner().map_err(|e| e.to_string())?;
        Ok((manifest, bytes))
    }
}

/// `(package, version)` from the names of fetched `.deb`s
/// (`NAME_VERSION_ARCH.deb`, with `:` written `%3a`).
fn fetched(list: &str) -> Vec<(String, String)> {
    list.lines()
        .filter_map(|l| {
            let l = l.trim().strip_suffix(".deb")?;
            let mut it = l.split('_');
            let (name, version) = (it.next()?, it.next()?);
            Some((name.to_string(), version.replace("%3a", ":")))
        })
        .collect()
}

/// An image unpacked for booting.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The image file's sha256.
    pub sha256: String,
    /// What it is made of.
    pub manifest: Manifest,
    /// The kernel, written out.
    pub kernel: PathBuf,
    /// The initramfs, written out.
    pub initrd: PathBuf,
}

/// Reads `image`, checks its parts and writes kernel and initramfs into
/// `dir`.
pub fn unpack(image: &Path, dir: &Path) -> Result<Unpacked, String> {
    let bytes = std::fs::read(image).map_err(|e| {
        format!(
            "the guest image {}: {e} (make one with `vouchd vm build-image`)",
            image.display()
        )
    })?;
    let sha256 = Digest::of(&bytes).to_hex();
    let mut manifest = None;
    let kernel = dir.join("vmlinuz");
    let initrd = dir.join("initrd.cpio");
    let mut found = (false, false);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let bad = |e: std::io::Error| format!("{} is not a guest image: {e}", image.display());
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.size() > MAX_PART {
            return Err(format!("{}: a part is too large", image.display()));
        }
        let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        match name.as_str() {
            "manifest.json" => {
                manifest = Some(
                    serde_json::from_slice::<Manifest>(&data)
                        .map_err(|e| format!("{}: its manifest: {e}", image.display()))?,
                )
            }
            "vmlinuz" => {
                std::fs::write(&kernel, &data).map_err(|e| e.to_string())?;
                found.0 = true;
            }
            "initrd.cpio" => {
                std::fs::write(&initrd, &data).map_err(|e| e.to_string())?;
                found.1 = true;
            }
            _ => {}
        }
    }
    match (manifest, found) {
        (Some(manifest), (true, true)) => Ok(Unpacked {
            sha256,
            manifest,
            kernel,
            initrd,
        }),
        _ => Err(format!(
            "{} is not a guest image: it needs manifest.json, vmlinuz and initrd.cpio",
            image.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_file_names_give_versions() {
        let s = "busybox-static_1%3a1.35.0-4+b3_amd64.deb\n\
                 linux-image-6.1.0-28-cloud-amd64_6.1.119-1_amd64.deb\n";
        assert_eq!(
            fetched(s),
            vec![
                ("busybox-static".into(), "1:1.35.0-4+b3".into()),
                (
                    "linux-image-6.1.0-28-cloud-amd64".into(),
                    "6.1.119-1".into()
                )
            ]
        );
    }

    #[test]
    fn an_image_is_checked_when_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, b"not a tar").unwrap();
        let e = unpack(&p, dir.path()).unwrap_err();
        assert!(e.contains("not a guest image"), "{e}");
        let e = unpack(&dir.path().join("missing"), dir.path()).unwrap_err();
        assert!(e.contains("vouchd vm build-image"), "{e}");
    }
}
