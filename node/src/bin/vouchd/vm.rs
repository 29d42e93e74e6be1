//! `vouchd vm`: checking that a guest boots, and building guest images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum VmCommand {
    /// Boot a tiny guest (a kernel and a busybox initramfs that prints a
    /// marker on the serial console) under each accelerator --accel allows,
    /// with a short timeout, and say whether it came up and why not. Exit 0
    /// when one accelerator works, 1 when none does.
    Check {
        /// kvm, tcg (software emulation) or kvm-or-tcg.
        #[arg(long, value_enum, default_value = "kvm-or-tcg")]
        accel: vouch_node::vm::Accel,
        /// The guest kernel (default: the newest /boot/vmlinuz-*, e.g. from
        /// linux-image-cloud-amd64).
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// A static busybox for the guest's init (busybox-static).
        #[arg(long, value_name = "PATH", default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// Boot this build image (from `vouchd vm build-image`) instead of
        /// the kernel and busybox.
        #[arg(long, value_name = "IMAGE", conflicts_with_all = ["kernel", "busybox"])]
        image: Option<PathBuf>,
        /// The qemu binary.
        #[arg(long, default_value = "qemu-system-x86_64")]
        qemu: String,
        /// Seconds a KVM guest gets to come up (software emulation gets 4x).
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a guest image for `isolation = "vm"` from a distribution's
    /// packages (a kernel package and busybox-static, fetched with
    /// mmdebstrap) and the in-guest runner; print its sha256, which
    /// verdicts built in it name.
    BuildImage {
        /// Only `debian` so far.
        #[arg(long, default_value = "debian")]
        distribution: String,
        /// The release the packages come from.
        #[arg(long, default_value = "bookworm")]
        release: String,
        /// The archive.
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// The kernel package.
        #[arg(long, default_value = "linux-image-cloud-amd64")]
        kernel_package: String,
        /// Where the image is written.
        #[arg(long, value_name = "IMAGE")]
        out: PathBuf,
        /// When run as root: the unprivileged user that runs mmdebstrap.
        #[arg(long, default_value = "vouch-build")]
        build_user: String,
        /// Print the manifest and sha256 as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn vm_build_image(c: VmCommand) -> Result<ExitCode> {
    let VmCommand::BuildImage {
        distribution,
        release,
        mirror,
        kernel_package,
        out,
        build_user,
        json,
    } = c
    else {
        return Ok(ExitCode::from(2));
    };
    let recipe = vouch_node::vm::image::ImageRecipe {
        distribution,
        release,
        mirror,
        kernel_package,
        mmdebstrap: "mmdebstrap".into(),
        staging: std::env::temp_dir(),
        build_user,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (manifest, sha) = runtime
        .block_on(vouch_node::vm::image::build(&recipe, &out))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("building the guest image {}", out.display()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "image": out.display().to_string(),
                "sha256": sha,
                "manifest": manifest,
            }))?
        );
    } else {
        println!("{}: sha256 {sha}", out.display());
        println!(
            "{} {}: {}, {}, runner {}, modules {}",
            manifest.distribution,
            manifest.release,
            manifest.kernel,
            manifest.busybox,
            manifest.runner,
            manifest.modules.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn vm_command(c: VmCommand) -> Result<ExitCode> {
    if matches!(c, VmCommand::BuildImage { .. }) {
        return vm_build_image(c);
    }
    let VmCommand::Check {
        accel,
        kernel,
        busybox,
        image,
        qemu,
        timeout,
        json,
    } = c
    else {
        return Ok(ExitCode::from(2));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let timeout = std::time::Duration::from_secs(timeout.max(1));
    let report = if let Some(image) = image {
        let dir = tempfile::tempdir().context("a temporary directory")?;
        let unpacked = vouch_node::vm::image::unpack(&image, dir.path())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        runtime.block_on(vouch_node::vm::check_guest(
            &qemu,
            &unpacked.kernel,
            &unpacked.initrd,
            "vouch.mode=check",
            accel,
            timeout,
        ))
    } else {
        let kernel = kernel.or_else(vouch_node::vm::default_kernel).context(
            "no guest kernel: give --kernel, or apt-get install linux-image-cloud-amd64",
        )?;
        runtime
            .block_on(vouch_node::vm::check(
                &qemu, &kernel, &busybox, accel, timeout,
            ))
            .with_context(|| format!("preparing the check guest from {}", busybox.display()))?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("kernel: {}", report.kernel);
        for b in &report.boots {
            match &b.reason {
                None => println!(
                    "{}: works, the guest came up in {:.1} s",
                    b.accel, b.seconds
                ),
                Some(r) => println!("{}: does not work: {r}", b.accel),
            }
        }
        match report.usable {
            Some("tcg") => println!(
                "builds would use software emulation (slow; the status page and verdicts say so)"
            ),
            Some(a) => println!("builds would use {a}"),
            None => {
                println!("no accelerator works: builds with isolation = \"vm\" cannot run here")
            }
        }
    }
    Ok(if report.usable.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
