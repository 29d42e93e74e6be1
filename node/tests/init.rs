use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

#[test]
fn init_creates_a_0600_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |cmd: &str| {
        Command::new(env!("CARGO_BIN_EXE_vouchd"))
            .args(["--data-dir", data.to_str().unwrap(), cmd])
            .output()
            .unwrap()
    };
    let first = run("init");
    assert!(first.status.success());
    let key = String::from_utf8(first.stdout).unwrap();
    assert!(key.starts_with("ed25519:"));
    let mode = std::fs::metadata(data.join("node.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = run("init");
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        key,
        "init keeps the key"
    );
    assert_eq!(String::from_utf8(run("key").stdout).unwrap(), key);
    std::fs::set_permissions(
        data.join("node.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let refused = run("key");
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("chmod 600"));
}
