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
