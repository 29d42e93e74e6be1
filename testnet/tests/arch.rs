//! An Arch Linux rebuild for real, as far as this machine allows: a tiny
//! package (testdata/arch/src) is built with Arch's `makepkg` (Debian's
//! package of pacman 6), which writes its `.BUILDINFO`, and published with
//! `repo-add` in a `file://` repository whose package and database are
//! signed with the test-only archive key. A node syncs it (checking the signature) and
//! rebuilds the package with the `archlinux-repro` backend under
//! `namespace` isolation, with a recipe honouring repro's contract
//! (testdata/arch/repro-makepkg: makepkg again, under the recorded build
//! date, paths and packager). The result is GOOD, and the package's own
//! attempts to read the node's key and reach the network fail.
//!
//! Needs makepkg, pacman-package-manager, libarchive-tools, zstd, uidmap
//! and the build user of the README; without them it says it skipped (CI
//! installs them and skips nothing).

use std::path::Path;

use vouch_attest::*;
use vouch_node::backend::BackendConfig;
use vouch_node::backend::debian::Isolation;
use vouch_node::sync::{Distribution, SyncProfile, release};
use vouch_testnet::debrepo::{archive_secret_key, sh, testdata};
use vouch_testnet::rebuild::{Guarded, have_tools, rebuild_all};

/// The test package's sources with the key path and port filled in, owned
/// by the build user (makepkg does not run as root).
fn sources(root: &Path, key: &Path, port: u16) -> std::path::PathBuf {
    let dir = root.join("vouch-repro-test");
    std::fs::create_dir_all(&dir).unwrap();
    let from = testdata("arch/src/vouch-repro-test");
    let pkgbuild = std::fs::read_to_string(from.join("PKGBUILD.in"))
        .unwrap()
        .replace("@KEY@", &key.display().to_string())
        .replace("@PORT@", &port.to_string());
    std::fs::write(dir.join("PKGBUILD"), pkgbuild).unwrap();
    std::fs::copy(from.join("hello.c"), dir.join("hello.c")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arch_package_built_with_makepkg_is_rebuilt_isolated_and_good() {
    if !have_tools(
        &[
            "makepkg",
            "repo-add",
            "bsdtar",
            "zstd",
            "fakeroot",
            "newuidmap",
        ],
        "apt-get install makepkg pacman-package-manager libarchive-tools zstd fakeroot uidmap",
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(t.path());
    let (data, key, port) = (&guarded.data, &guarded.key, guarded.port);

    // The packaging sources (what the rebuilder reads), and the
    // distribution's build of them elsewhere, as an unprivileged user.
    let srcroot = t.path().join("sources");
    sources(&srcroot, key, port);
    let src = sources(&t.path().join("distribution"), key, port);
    sh(
        t.path(),
        &format!(
            "chown -R vouch-build:vouch-build {src}; chmod 755 {tmp} {root}; cd {src}; \
             setpriv --reuid=vouch-build --regid=vouch-build --init-groups -- \
             env -i PATH=/usr/bin:/bin HOME=/tmp SOURCE_DATE_EPOCH=1767225600 \
             PACKAGER='vouch tests <tests@vouch.invalid>' PKGEXT=.pkg.tar.zst \
             makepkg --nodeps --noconfirm",
            src = src.display(),
            tmp = t.path().display(),
            root = src.parent().unwrap().display(),
        ),
    );
    let pkgname = "vouch-repro-test-1.0-1-x86_64.pkg.tar.zst";
    let pkg = src.join(pkgname);
    assert!(pkg.exists());
    // The repository: the package signed (as Arch's are; repo-add puts
    // the signature in the database), and the database signed.
    let repo = t.path().join("mirror/test/os/x86_64");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::copy(&pkg, repo.join(pkgname)).unwrap();
    let pkg_sig =
        release::sign_detached(&std::fs::read(&pkg).unwrap(), &archive_secret_key()).unwrap();
    std::fs::write(repo.join(format!("{pkgname}.sig")), pkg_sig).unwrap();
    sh(&repo, &format!("repo-add -q test.db.tar.gz {pkgname}"));
    let db = std::fs::read(repo.join("test.db")).unwrap();
    let sig = release::sign_detached(&db, &archive_secret_key()).unwrap();
    std::fs::write(repo.join("test.db.sig"), sig).unwrap();
    let published = Digest::of(&std::fs::read(&pkg).unwrap());

    // The recipe, given the sources it may read.
    let tools = t.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let recipe = testdata("arch/repro-makepkg").canonicalize().unwrap();
    let repro = tools.join("repro");
    std::fs::write(
        &repro,
        format!(
            "#!/bin/sh\nVOUCH_ARCH_SOURCES={} exec {} \"$@\"\n",
            srcroot.display(),
            recipe.display()
        ),
    )
    .unwrap();
    sh(&tools, "chmod 755 repro");
    let backend = BackendConfig::ArchlinuxRepro {
        command: repro.display().to_string(),
        version: "repro-makepkg".into(),
        isolation: Isolation::Namespace,
        network: false,
        binds: vec![
            tools.clone(),
            srcroot.clone(),
            recipe.parent().unwrap().into(),
        ],
        build_user: "vouch-build".into(),
        staging: std::env::temp_dir(),
    };
    let profile = SyncProfile {
        repos: vec!["test".into()],
        architectures: vec!["x86_64".into()],
        keyring: Some(testdata("keys/test-archive.pub.asc")),
        ..SyncProfile::new(
            "arch-test",
            Distribution::Archlinux,
            &format!("file://{}/mirror/$repo/os/$arch", t.path().display()),
        )
    };
    let start = std::time::Instant::now();
    let results = rebuild_all(&profile, backend, &data.join("work"), None, 600).await;
    eprintln!("isolated makepkg rebuild: {:?}", start.elapsed());
    assert_eq!(results.len(), 1);
    let (job, v, log) = &results[0];
    assert_eq!(job.subjects[0].sha256, published);
    assert_eq!(v.outcome, Outcome::Good, "{log}");
    assert!(
        v.inputs.backend_version.contains("isolation namespace"),
        "{}",
        v.inputs.backend_version
    );
    let attempts: Vec<&str> = log.lines().filter(|l| l.starts_with("ATTEMPT ")).collect();
    assert_eq!(attempts.len(), 3, "{log}");
    for a in attempts {
        assert!(a.ends_with(": failed"), "{a}");
    }
    guarded.assert_key_unchanged();

    // A recipe shown the data directory is refused, not run.
    let exposed = BackendConfig::ArchlinuxRepro {
        command: repro.display().to_string(),
        version: "repro-makepkg".into(),
        isolation: Isolation::Namespace,
        network: false,
        binds: vec![t.path().to_path_buf()],
        build_user: "vouch-build".into(),
        staging: std::env::temp_dir(),
    };
    let refused = rebuild_all(&profile, exposed, &data.join("work2"), None, 600).await;
    assert_eq!(
        refused[0].1.outcome,
        Outcome::Fail {
            reason: FailReason::Backend
        }
    );
    assert!(
        refused[0].2.contains("would be visible to the build"),
        "{}",
        refused[0].2
    );
}
