//! End-user setups: a client configuration trusting some test signers.

use std::path::{Path, PathBuf};

use vouch_attest::{SecretKey, write_public_key};

/// Writes `dir/keys.d/NAME.pub` for each signer and `dir/client.toml`
/// asking `nodes`, with `threshold`, `on_unknown` and a cache in
/// `cache_dir`; returns the configuration's path. `keyring` is the path the
/// configuration names (it differs from `dir/keys.d` when the file is read
/// inside a chroot).
pub fn write_config(
    dir: &Path,
    keyring: &str,
    nodes: &[&str],
    signers: &[(&str, &SecretKey)],
    threshold: usize,
    on_unknown: &str,
    cache_dir: &str,
) -> PathBuf {
    let keys = dir.join("keys.d");
    std::fs::create_dir_all(&keys).expect("keys.d");
    for (name, k) in signers {
        write_public_key(&keys.join(format!("{name}.pub")), &k.public_key()).expect("key file");
    }
    let nodes: Vec<String> = nodes.iter().map(|n| format!("{n:?}")).collect();
    let text = format!(
        "nodes = [{}]\ntimeout_secs = 5\non_unknown = {on_unknown:?}\ncache_dir = {cache_dir:?}\n\
         keyring = {keyring:?}\nthreshold = {threshold}\n",
        nodes.join(", ")
    );
    let path = dir.join("client.toml");
    std::fs::write(&path, text).expect("client.toml");
    path
}

/// Runs the `vouch` binary with `--config CONFIG` (when given) and `args`:
/// its exit code, stdout and stderr.
pub fn vouch(config: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd =
        std::process::Command::new(crate::demo::sibling_binary("vouch").expect("the vouch binary"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.args(args).output().expect("running vouch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
