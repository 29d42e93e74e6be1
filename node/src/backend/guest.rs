//! Running a build in a qemu guest (`isolation = "vm"`).
//!
//! The guest boots the image `vouchd vm build-image` made (see
//! [`crate::vm::image`]): its root lives in memory and is thrown away at
//! power-off. Three disks go in, none is shared with anything else:
//! `vda` the job (build script, source files, build path; read-only),
//! `vdb` the build environment as a tar (read-only), `vdc` a blank disk the
//! guest writes a tar of the built `.deb`s and its exit status to. The
//! serial console is the build log. The guest has no network device. The
//! accelerator is checked by booting the image once (`vouch.mode=check`)
//! before the first build; software emulation is used only when allowed,
//! and the verdict's backend version then says so, with the image's sha256.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stage::Stage;
use super::{BuildStatus, RunOutput, namespace, run_command};
use crate::vm::Accel;
use crate::vm::image::{self, Unpacked};

/// The guest of the debian backend's `isolation = "vm"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSettings {
    /// The image made by `vouchd vm build-image` (required for `vm`).
    #[serde(default)]
    pub image: Option<PathBuf>,
    /// `kvm` (default), `tcg` (software emulation) or `kvm-or-tcg`.
    #[serde(default)]
    pub accel: Accel,
    /// The qemu command.
    #[serde(default = "default_qemu")]
    pub qemu: String,
    /// Virtual CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Guest memory in MiB; the build environment and the build tree live
    /// in it.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Size of the output disk in MiB (the most a build can hand back).
    #[serde(default = "default_output")]
    pub output_mib: u32,
    /// Seconds the accelerator check may take.
    #[serde(default = "default_check_timeout")]
    pub check_timeout_secs: u64,
}

fn default_qemu() -> String {
    "qemu-system-x86_64".into()
}
fn default_cpus() -> u32 {
    2
}
fn default_memory() -> u32 {
    4096
}
fn default_output() -> u32 {
    1024
}
fn default_check_timeout() -> u64 {
    20
}

impl Default for VmSettings {
    fn default() -> Self {
        VmSettings {
            image: None,
            accel: Accel::default(),
            qemu: default_qemu(),
            cpus: default_cpus(),
            memory_mib: default_memory(),
            output_mib: default_output(),
            check_timeout_secs: default_check_timeout(),
        }
    }
}

/// A guest build's run, and what the verdict's backend version adds.
pub struct GuestRun {
    /// The run.
    pub run: RunOutput,
    /// `image sha256 ...; accel ...`.
    pub note: String,
}

/// Accelerators found to work, per (qemu, setting, image).
type Checked = HashMap<(String, String, String), Result<&'static str, String>>;
static CHECKED: Mutex<Option<Checked>> = Mutex::new(None);

/// Which accelerator builds use with `settings` and the image: the image
/// is booted once with `vouch.mode=check` (the answer is kept).
pub async fn usable(settings: &VmSettings, image: &Unpacked) -> Result<&'static str, String> {
    let key = (
        settings.qemu.clone(),
        format!("{:?}", settings.accel),
        image.sha256.clone(),
    );
    if let Some(known) = CHECKED
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return known;
    }
    let report = crate::vm::check_guest(
        &settings.qemu,
        &image.kernel,
        &image.initrd,
        "vouch.mode=check",
        settings.accel,
        Duration::from_secs(settings.check_timeout_secs.max(1)),
    )
    .await;
    let answer = report.usable.ok_or_else(|| {
        let why: Vec<String> = report
            .boots
            .iter()
            .map(|b| format!("{}: {}", b.accel, b.reason.as_deref().unwrap_or("?")))
            .collect();
        format!(
            "no accelerator allowed by vm.accel = {:?} boots the guest here ({}); \
             see `vouchd vm check`",
            settings.accel,
            why.join("; ")
        )
    });
    if let Ok(mut m) = CHECKED.lock() {
        m.get_or_insert_with(HashMap::new)
            .insert(key, answer.clone());
    }
    answer
}

/// What the last check of a configured image found, for the status page.
#[derive(Debug, Clone, Serialize)]
pub struct GuestStatus {
    /// The image's sha256.
    pub image_sha256: Option<String>,
    /// The accelerator builds use (`tcg` is software emulation).
    pub accel: Option<&'static str>,
    /// Why no build can run, when none can.
    pub error: Option<String>,
}

static STATUS: Mutex<Option<HashMap<PathBuf, GuestStatus>>> = Mutex::new(None);

/// The last check of `settings`' image, if it was checked.
pub fn status(settings: &VmSettings) -> Option<GuestStatus> {
    let image = settings.image.as_ref()?;
    STATUS
        .lock()
        .ok()?
        .as_ref()
        .and_then(|m| m.get(image).cloned())
}

/// At start-up: unpacks the configured image and boots it once, so that a
/// host where it cannot run says so before the first job.
pub async fn startup_check(settings: &VmSettings) -> Result<(String, &'static str), String> {
    let answer = async {
        let image = settings
            .image
            .as_ref()
            .ok_or("isolation = \"vm\" needs vm.image (see `vouchd vm build-image`)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let unpacked = image::unpack(image, dir.path())?;
        let accel = usable(settings, &unpacked)
            .await
            .map_err(|e| format!("image sha256 {}: {e}", unpacked.sha256))?;
        Ok::<_, String>((unpacked.sha256, accel))
    }
    .await;
    if let Some(image) = &settings.image
        && let Ok(mut m) = STATUS.lock()
    {
        let status = match &answer {
            Ok((sha, accel)) => GuestStatus {
                image_sha256: Some(sha.clone()),
                accel: Some(accel),
                error: None,
            },
            Err(e) => GuestStatus {
                image_sha256: None,
                accel: None,
                error: Some(e.clone()),
            },
        };
        m.get_or_insert_with(HashMap::new)
            .insert(image.clone(), status);
    }
    answer
}

/// Runs the staged build script in a guest on `env`.
pub async fn build(
    settings: &VmSettings,
    stage: &Stage,
    env: &std::path::Path,
    parent: &str,
    timeout: Duration,
    max_log: usize,
) -> Result<GuestRun, String> {
    let image = settings.image.as_ref().ok_or(
        "isolation = \"vm\" needs vm.image: make one with `vouchd vm build-image --distribution \
         debian --release bookworm --out IMAGE`",
    )?;
    let guest_dir = stage.path("guest");
    std::fs::create_dir_all(&guest_dir).map_err(|e| e.to_string())?;
    let unpacked = image::unpack(image, &guest_dir)?;
    let accel = usable(settings, &unpacked).await?;
    let note = format!(
        "image sha256 {}; accel {accel}{}",
        unpacked.sha256,
        if accel == "tcg" {
            " (software emulation)"
        } else {
            ""
        }
    );
    // The environment as root owns it, from inside the build user's
    // namespace.
    let env_tar = stage.path("environment.tar");
    let run = namespace::run_as_root(
        stage,
        &[
            "tar".into(),
            "--numeric-owner".into(),
            "-C".into(),
            env.display().to_string(),
            "-cf".into(),
            env_tar.display().to_string(),
            ".".into(),
        ],
        timeout,
        1 << 16,
    )
    .await?;
    if run.status != BuildStatus::Ok {
        return Err(format!(
            "cannot pack the environment for the guest:\n{}",
            String::from_utf8_lossy(&run.log)
        ));
    }
    let job = stage.path("job.tar");
    write_job(stage, parent, &job)?;
    let out = stage.create_blank("output.img", u64::from(settings.output_mib) << 20)?;
    let mut args = stage.runner.clone();
    args.push(settings.qemu.clone());
    args.extend(crate::vm::guest_args(
        accel,
        settings.memory_mib,
        settings.cpus,
        &unpacked.kernel,
        &unpacked.initrd,
        "vouch.mode=build",
    ));
    args.extend([
        "-cpu".to_string(),
        if accel == "kvm" { "host" } else { "max" }.into(),
    ]);
    for (file, ro) in [(&job, true), (&env_tar, true), (&out, false)] {
        args.push("-drive".into());
        args.push(format!(
            "file={},format=raw,if=virtio{}",
            file.display(),
            if ro { ",readonly=on" } else { "" }
        ));
    }
    let mut run = run_command(&args, stage.dir.path(), &[], timeout, max_log).await;
    if run.status == BuildStatus::Timeout || run.status == BuildStatus::BackendError {
        return Ok(GuestRun { run, note });
    }
    match collect(&out, &stage.path("built")) {
        Ok((0, built)) => {
            run.status = BuildStatus::Ok;
            run.log
                .extend_from_slice(format!("the guest built {built} file(s)\n").as_bytes());
        }
        Ok((status, _)) => {
            run.status = BuildStatus::Failed;
            run.log
                .extend_from_slice(format!("the build in the guest exited {status}\n").as_bytes());
        }
        Err(e) => {
            run.status = BuildStatus::Failed;
            run.log.extend_from_slice(
                format!(
                    "the guest reported no result (it crashed, hung up or wrote garbage): {e}\n"
                )
                .as_bytes(),
            );
        }
    }
    Ok(GuestRun { run, note })
}

/// The job disk: the build script, the source files, the build path's
/// parent.
fn write_job(stage: &Stage, parent: &str, to: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut b = tar::Builder::new(file);
    let err = |e: std::io::Error| format!("{}: {e}", to.display());
    b.append_path_with_name(stage.path("vouch-build.sh"), "vouch-build.sh")
        .map_err(err)?;
    b.append_dir_all("src", stage.path("src")).map_err(err)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(parent.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "parent", parent.as_bytes())
        .map_err(err)?;
    b.into_inner().map_err(err)?;
    Ok(())
}

/// Reads the tar the guest wrote to the output disk: copies the `.deb`s
/// (plain names, regular files) into `built` and returns the exit status
/// and how many were copied.
fn collect(disk: &std::path::Path, built: &std::path::Path) -> Result<(i32, usize), String> {
    let file = std::fs::File::open(disk).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(file);
    let mut status = None;
    let mut count = 0;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name == "vouch-exit-status" {
            let mut s = String::new();
            entry
                .by_ref()
                .take(64)
                .read_to_string(&mut s)
                .map_err(|e| e.to_string())?;
            status = Some(
                s.trim()
                    .parse::<i32>()
                    .map_err(|_| format!("an exit status of `{}`", s.trim()))?,
            );
        } else if name.ends_with(".deb") && !name.starts_with('.') {
            let mut f = std::fs::File::create(built.join(&name)).map_err(|e| e.to_string())?;
            std::io::copy(&mut entry, &mut f).map_err(|e| e.to_string())?;
            count += 1;
        }
    }
    let status = status.ok_or("no exit status on the output disk")?;
    Ok((status, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(dir: &std::path::Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let p = dir.join("out.img");
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        let mut bytes = b.into_inner().unwrap();
        bytes.resize(1 << 20, 0);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn what_a_guest_hands_back_is_checked() {
        let t = tempfile::tempdir().unwrap();
        let built = t.path().join("built");
        std::fs::create_dir(&built).unwrap();
        // A blank disk: the guest crashed before writing anything.
        let blank = t.path().join("blank.img");
        std::fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
        assert!(collect(&blank, &built).is_err());
        // Garbage.
        let garbage = t.path().join("garbage.img");
        std::fs::write(&garbage, vec![0x5au8; 4096]).unwrap();
        assert!(collect(&garbage, &built).is_err());
        // Outputs but no exit status.
        let d = disk(t.path(), &[("./x_1_amd64.deb", b"deb")]);
        assert!(collect(&d, &built).unwrap_err().contains("no exit status"));
        // A status that is not a number.
        let d = disk(t.path(), &[("./vouch-exit-status", b"ok\n")]);
        assert!(collect(&d, &built).is_err());
        // A failed build.
        let d = disk(t.path(), &[("./vouch-exit-status", b"2\n")]);
        assert_eq!(collect(&d, &built).unwrap(), (2, 0));
        // A good one: only the .deb files are taken, by their base names.
        let d = disk(
            t.path(),
            &[
                ("./x_1_amd64.deb", b"deb"),
                ("./notes.txt", b"no"),
                ("./vouch-exit-status", b"0\n"),
            ],
        );
        assert_eq!(collect(&d, &built).unwrap(), (0, 1));
        assert_eq!(std::fs::read(built.join("x_1_amd64.deb")).unwrap(), b"deb");
        assert!(!built.join("notes.txt").exists());
    }
}
