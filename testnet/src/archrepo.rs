//! Arch Linux packages made for the end-user tests: built with the real
//! `makepkg` (as an unprivileged user), published with the real `repo-add`
//! in a `file://` repository (packages signed with the test-only archive
//! key, so the database carries their signatures), and a `pacman.conf` for
//! a throw-away root.

use std::path::{Path, PathBuf};

use vouch_node::sync::release;

use crate::debrepo::{archive_secret_key, sh};
use crate::rebuild::have_tools;

/// Whether makepkg, repo-add and pacman are here (an error under CI).
pub fn tools_present() -> bool {
    have_tools(
        &[
            "makepkg", "repo-add", "pacman", "bsdtar", "zstd", "fakeroot",
        ],
        "apt-get install makepkg pacman-package-manager libarchive-tools zstd fakeroot",
    )
}

/// Builds package `name` 1.0-1 (architecture `any`) installing
/// `/usr/share/NAME/payload` with `payload`, in `dir/NAME`; returns the
/// package file.
pub fn build(dir: &Path, name: &str, payload: &str) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).expect("package dir");
    std::fs::write(
        src.join("PKGBUILD"),
        format!(
            "pkgname={name}\npkgver=1.0\npkgrel=1\npkgdesc='vouch test package'\narch=('any')\n\
             license=('MIT')\npackage() {{\n  install -d \"$pkgdir/usr/share/{name}\"\n  \
             printf '%s\\n' '{payload}' > \"$pkgdir/usr/share/{name}/payload\"\n}}\n"
        ),
    )
    .expect("PKGBUILD");
    sh(
        dir,
        &format!(
            "chown -R vouch-build:vouch-build {src}; chmod 755 {dir}; cd {src}; \
             setpriv --reuid=vouch-build --regid=vouch-build --init-groups -- \
             env -i PATH=/usr/bin:/bin HOME=/tmp SOURCE_DATE_EPOCH=1767225600 \
             PACKAGER='vouch tests <tests@vouch.invalid>' PKGEXT=.pkg.tar.zst \
             makepkg --nodeps --noconfirm >/dev/null 2>&1",
            src = src.display(),
            dir = dir.display(),
        ),
    );
    src.join(format!("{name}-1.0-1-any.pkg.tar.zst"))
}

/// Publishes `packages` in `repo` (the directory of repository `name`):
/// each signed, then `repo-add`.
pub fn publish(repo: &Path, name: &str, packages: &[PathBuf]) {
    std::fs::create_dir_all(repo).expect("repo dir");
    for p in packages {
        let file = p.file_name().expect("a package file name");
        let to = repo.join(file);
        std::fs::copy(p, &to).expect("copy package");
        let sig =
            release::sign_detached(&std::fs::read(&to).expect("package"), &archive_secret_key())
                .expect("sign");
        let mut sig_path = to.clone().into_os_string();
        sig_path.push(".sig");
        std::fs::write(sig_path, sig).expect("write sig");
        sh(
            repo,
            &format!("repo-add -q {name}.db.tar.gz {}", file.to_string_lossy()),
        );
    }
}

/// A `pacman.conf` for a root that uses only repository `name` at
/// `file://REPO` (signatures are not what these tests are about).
pub fn pacman_conf(name: &str, repo: &Path) -> String {
    format!(
        "[options]\nArchitecture = auto\nSigLevel = Never\nLocalFileSigLevel = Never\n\
         CacheDir = /var/cache/pacman/pkg/\n\n[{name}]\nServer = file://{}\n",
        repo.display()
    )
}

/// Makes a throw-away root for pacman: its database and cache directories
/// and its `pacman.conf`.
pub fn root(root: &Path, conf: &str) -> PathBuf {
    for d in [
        "var/lib/pacman",
        "var/cache/pacman/pkg",
        "etc",
        "usr/bin",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("root dirs");
    }
    let c = root.join("etc/pacman.conf");
    std::fs::write(&c, conf).expect("pacman.conf");
    c
}
