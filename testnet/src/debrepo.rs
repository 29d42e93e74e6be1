//! A Debian repository made for the rebuild tests: the test source
//! packages of `testdata/debian/src`, built the way a distribution builds
//! them (a fresh `mmdebstrap` chroot of the current bookworm archive, which
//! writes the `.buildinfo`), published as a signed apt repository with the
//! `.buildinfo`s beside the packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use vouch_node::sync::{Distribution, SyncProfile, release};

/// `testdata/` of the repository.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

pub fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the tools are here; otherwise says what is missing (an error
/// under CI, which installs them).
pub fn tools_present() -> bool {
    crate::rebuild::have_tools(
        &[
            "mmdebstrap",
            "newuidmap",
            "dpkg-source",
            "dpkg-scanpackages",
        ],
        "apt-get install mmdebstrap uidmap dpkg-dev",
    )
}

/// A variant of the test package: its name, and lines added to the end of
/// its `build` target.
pub struct Variant {
    /// Source and binary package name.
    pub name: &'static str,
    /// Recipe lines added to the `build` target.
    pub build_extra: String,
}

/// Writes the source package of `v` into `dir` and builds it with
/// `dpkg-source -b`.
pub fn source_package(dir: &Path, v: &Variant) {
    let tree = dir.join(format!("{}-1.0", v.name));
    sh(
        dir,
        &format!(
            "cp -r {} {}",
            testdata("debian/src/vouch-repro-test").display(),
            tree.display()
        ),
    );
    for f in ["debian/control", "debian/changelog", "debian/rules"] {
        let p = tree.join(f);
        let mut text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("vouch-repro-test", v.name);
        if f == "debian/rules" {
            text = text.replace(
                "\tgcc -O2 -ffile-prefix-map=$(CURDIR)=. -o hello hello.c\n",
                &format!(
                    "\tgcc -O2 -ffile-prefix-map=$(CURDIR)=. -o hello hello.c\n{}",
                    v.build_extra
                ),
            );
        }
        std::fs::write(&p, text).unwrap();
    }
    sh(dir, &format!("dpkg-source -b {}-1.0 >/dev/null", v.name));
}

/// Builds every source package in `src` as the distribution would: one
/// fresh chroot of the current bookworm archive, `dpkg-buildpackage` in
/// it; the `.deb`s and `.buildinfo`s land in `out`.
pub fn distribution_build(src: &Path, out: &Path, names: &[&str]) {
    let mut script = String::from("set -e\n");
    for n in names {
        script += &format!(
            "dpkg-source -x /src/{n}_1.0.dsc /build/{n}-1.0\n(cd /build/{n}-1.0 && dpkg-buildpackage -b -uc -us)\n"
        );
    }
    std::fs::write(src.join("build-all.sh"), script).unwrap();
    sh(
        src,
        &format!(
            "mmdebstrap --quiet --mode=unshare --variant=apt --include=build-essential,gcc,libc6-dev \
             --customize-hook='mkdir -p \"$1/src\" \"$1/build\"' \
             --customize-hook='sync-in {src} /src' \
             --customize-hook='chroot \"$1\" sh /src/build-all.sh' \
             --customize-hook='sync-out /build {out}' \
             bookworm /dev/null http://deb.debian.org/debian",
            src = src.display(),
            out = out.display()
        ),
    );
}

/// Where the test repository publishes each `.buildinfo`: beside the
/// packages.
pub const BUILDINFO_TEMPLATE: &str = "{mirror}/{dir}/{source}_{version}_{arch}.buildinfo";

/// The public key that signs the test repository.
pub fn archive_keyring() -> PathBuf {
    testdata("keys/test-archive.pub.asc")
}

/// The sync profile of the test repository served at `mirror` (a URL):
/// bookworm main amd64, `InRelease` checked against [`archive_keyring`],
/// `.buildinfo`s beside the packages.
pub fn profile(name: &str, mirror: &str) -> SyncProfile {
    SyncProfile {
        releases: vec!["bookworm".into()],
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
        keyring: Some(archive_keyring()),
        buildinfo: Some(BUILDINFO_TEMPLATE.into()),
        ..SyncProfile::new(name, Distribution::Debian, mirror)
    }
}

/// A signed apt repository of the built packages, with the `.buildinfo`s
/// beside them: `InRelease` is signed with the test-only archive key.
pub fn publish(src: &Path, built: &Path, mirror: &Path, names: &[&str]) {
    for n in names {
        let pool = mirror.join(format!("pool/main/v/{n}"));
        std::fs::create_dir_all(&pool).unwrap();
        for f in [format!("{n}_1.0.dsc"), format!("{n}_1.0.tar.xz")] {
            std::fs::copy(src.join(&f), pool.join(&f)).unwrap();
        }
        for f in [
            format!("{n}_1.0_amd64.deb"),
            format!("{n}_1.0_amd64.buildinfo"),
        ] {
            std::fs::copy(built.join(&f), pool.join(&f)).unwrap();
        }
    }
    let dists = mirror.join("dists/bookworm");
    std::fs::create_dir_all(dists.join("main/binary-amd64")).unwrap();
    std::fs::create_dir_all(dists.join("main/source")).unwrap();
    sh(
        mirror,
        "dpkg-scanpackages -m pool > dists/bookworm/main/binary-amd64/Packages 2>/dev/null\n\
         xz -k dists/bookworm/main/binary-amd64/Packages\n\
         dpkg-scansources pool > dists/bookworm/main/source/Sources 2>/dev/null\n\
         xz -k dists/bookworm/main/source/Sources",
    );
    release::write_inrelease(&dists, "bookworm", &archive_secret_key())
        .unwrap_or_else(|e| panic!("signing the test repository: {e}"));
}

/// The test-only archive key that signs the repository's `InRelease`.
pub fn archive_secret_key() -> String {
    std::fs::read_to_string(testdata("keys/test-archive.sec.asc")).unwrap_or_default()
}

/// Runs `cmd` with `sh -c`; its stdout. Panics naming the command when it
/// fails (benchmark set-up).
fn sh_out(cmd: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("running sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The real Debian 12 main amd64 index for benchmarks, as a mirror on disk
/// (kept in the temporary directory between runs): `Packages.xz` and
/// `Sources.xz` as the archive serves them (fetched once), and an
/// `InRelease` signed with the test-only archive key ([`archive_keyring`]
/// verifies it). Returns the mirror directory and the uncompressed
/// `Packages` and `Sources`.
pub fn bookworm_main_mirror() -> (PathBuf, Vec<u8>, Vec<u8>) {
    let cache = std::env::temp_dir().join("vouch-bench-debian-archive");
    let mirror = cache.join("mirror");
    let mut texts = Vec::new();
    for (sub, file) in [
        ("main/binary-amd64", "Packages.xz"),
        ("main/source", "Sources.xz"),
    ] {
        let dir = mirror.join("dists/bookworm").join(sub);
        std::fs::create_dir_all(&dir).expect("dirs");
        let path = dir.join(file);
        if !path.exists() {
            let part = dir.join(format!("{file}.part"));
            sh_out(&format!(
                "curl -sf -o {} https://deb.debian.org/debian/dists/bookworm/{sub}/{file}",
                part.display(),
            ));
            std::fs::rename(&part, &path).expect("rename");
        }
        texts.push(sh_out(&format!("xz -dc {}", path.display())));
    }
    let sources = texts.pop().expect("two");
    let packages = texts.pop().expect("two");
    release::write_inrelease(
        &mirror.join("dists/bookworm"),
        "bookworm",
        &archive_secret_key(),
    )
    .expect("InRelease");
    (mirror, packages, sources)
}
