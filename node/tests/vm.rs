//! `vouchd vm check` boots a real guest with qemu. Needs
//! qemu-system-x86, busybox-static and a kernel in /boot
//! (linux-image-cloud-amd64); without them it says it skipped.

use std::process::Command;

fn present() -> bool {
    let qemu = Command::new("sh")
        .args([
            "-c",
            "command -v qemu-system-x86_64 && test -x /bin/busybox",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    let kernel = vouch_node::vm::default_kernel().is_some();
    if qemu && kernel {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must not skip: qemu-system-x86, busybox-static and a /boot kernel are needed"
    );
    eprintln!(
        "SKIPPED: vm check needs qemu-system-x86, busybox-static and linux-image-cloud-amd64"
    );
    false
}

fn check(accel: &str) -> (bool, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouchd"))
        .args(["--data-dir", t.path().to_str().unwrap()])
        .args(["vm", "check", "--json", "--timeout", "8", "--accel", accel])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

#[test]
fn software_emulation_boots_a_guest_and_kvm_is_judged_by_a_real_boot() {
    if !present() {
        return;
    }
    let (ok, report) = check("tcg");
    assert!(ok, "{report}");
    assert_eq!(report["usable"], "tcg");
    assert_eq!(report["boots"][0]["works"], true, "{report}");
    // KVM is judged by a guest that comes up, not by /dev/kvm opening:
    // either it works, or the report says why not, and the exit says so.
    let (ok, report) = check("kvm");
    let kvm = &report["boots"][0];
    assert_eq!(kvm["accel"], "kvm");
    if kvm["works"] == true {
        assert!(ok && report["usable"] == "kvm", "{report}");
    } else {
        assert!(!ok && report["usable"].is_null(), "{report}");
        assert!(
            kvm["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{report}"
        );
    }
}

/// `vouchd vm build-image` makes the same image twice from the same
/// packages, and a daemon's start-up check boots it under software
/// emulation (when allowed), refuses KVM where KVM does not really work,
/// and refuses a file that is not an image.
#[tokio::test]
async fn a_build_image_is_reproducible_and_checked_at_start_up() {
    if !present() {
        return;
    }
    let mm = Command::new("sh")
        .args(["-c", "command -v mmdebstrap && id vouch-build"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !mm {
        assert!(std::env::var_os("CI").is_none(), "CI must not skip");
        eprintln!("SKIPPED: build-image needs mmdebstrap and the build user");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let build = |out: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_vouchd"))
            .args(["--data-dir", t.path().to_str().unwrap()])
            .args([
                "vm",
                "build-image",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (a, b) = (t.path().join("a.img"), t.path().join("b.img"));
    let first = build(&a);
    let second = build(&b);
    assert_eq!(first["sha256"], second["sha256"], "{first} {second}");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(
        first["manifest"]["kernel"]
            .as_str()
            .is_some_and(|k| k.starts_with("linux-image-")),
        "{first}"
    );

    use vouch_node::backend::guest::{VmSettings, startup_check, status};
    let tcg = VmSettings {
        image: Some(a.clone()),
        accel: vouch_node::vm::Accel::Tcg,
        ..VmSettings::default()
    };
    let (sha, accel) = startup_check(&tcg).await.unwrap();
    assert_eq!(sha, first["sha256"].as_str().unwrap());
    assert_eq!(accel, "tcg");
    assert_eq!(status(&tcg).unwrap().accel, Some("tcg"));

    let (kvm_works, _) = check("kvm");
    let kvm = VmSettings {
        image: Some(b.clone()),
        accel: vouch_node::vm::Accel::Kvm,
        check_timeout_secs: 8,
        ..VmSettings::default()
    };
    match startup_check(&kvm).await {
        Ok((_, accel)) => assert!(kvm_works && accel == "kvm"),
        Err(e) => {
            assert!(!kvm_works, "{e}");
            assert!(e.contains("kvm:"), "{e}");
            assert!(status(&kvm).unwrap().error.is_some());
        }
    }

    let junk = t.path().join("junk.img");
    std::fs::write(&junk, b"junk").unwrap();
    let e = startup_check(&VmSettings {
        image: Some(junk),
        ..tcg.clone()
    })
    .await
    .unwrap_err();
    assert!(e.contains("not a guest image"), "{e}");
}
