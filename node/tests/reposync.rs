//! Repository sync from a local mirror (file:// URLs): real fixture
//! entries, split packages, hostile entries, `vouchd sync --dry-run`.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use vouch_node::sync::profile::Filter;
use vouch_node::sync::{arch, debian, fetch, release};

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../testdata/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The real pacman entry, renamed into another (split) package of a base.
/// The test-only archive key (its secret is public, in testdata/keys).
fn test_secret_key() -> String {
    fixture("keys/test-archive.sec.asc")
}

fn test_keyring() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/test-archive.pub.asc")
}

fn desc(name: &str, base: &str, sha_byte: u8) -> String {
    let real = fixture("arch/repo-db_pacman-5.2.2-1.desc");
    let real = real.replacen("%NAME%\npacman\n", &format!("%NAME%\n{name}\n"), 1);
    let real = real.replacen("%BASE%\npacman\n", &format!("%BASE%\n{base}\n"), 1);
    let real = real.replacen(
        "pacman-5.2.2-1-x86_64.pkg.tar.zst",
        &format!("{name}-5.2.2-1-x86_64.pkg.tar.zst"),
        1,
    );
    real.replacen(
        "d78ea84801548dee105dfaf1b59a9b07fbf7fe5bc26414df27ca376ac46c3000",
        &format!("{:02x}", sha_byte).repeat(32),
        1,
    )
}

fn raw_entry(builder: &mut tar::Builder<Vec<u8>>, path: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    builder.append(&h, data).unwrap();
}

fn db(entries: &[(&[u8], String)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        raw_entry(&mut b, path, data.as_bytes());
    }
    b.into_inner().unwrap()
}

#[test]
fn split_packages_group_by_base_and_hostile_entries_are_refused() {
    let tar = db(&[
        (b"pacman-5.2.2-1/desc", desc("pacman", "pacman", 1)),
        (b"libalpm-5.2.2-1/desc", desc("libalpm", "pacman", 2)),
        (b"zlib-1/desc", desc("zlib", "zlib", 3)),
        (b"../evil-1/desc", desc("evil", "evil", 4)),
        (b"/etc/desc", desc("abs", "abs", 5)),
        (b"broken-1/desc", "%NAME%\nbroken\n".to_string()),
        (b"huge-1/desc", "x".repeat(2 << 20)),
        (
            b"slash-1/desc",
            desc("slash", "slash", 6)
                .replace("slash-5.2.2-1-x86_64.pkg.tar.zst", "../slash.pkg.tar.zst"),
        ),
    ]);
    let r = arch::parse_db(
        &tar,
        "core",
        "x86_64",
        "https://mirror/core/os/x86_64",
        &Filter::all(),
    );
    let jobs: Vec<(String, usize)> = r
        .jobs
        .iter()
        .map(|j| (j.source.clone(), j.subjects.len()))
        .collect();
    assert_eq!(
        jobs,
        vec![("pacman".to_string(), 2), ("zlib".to_string(), 1)]
    );
    let reasons: Vec<String> = r
        .refused
        .iter()
        .map(|x| format!("{}: {}", x.entry, x.reason))
        .collect();
    assert_eq!(r.refused.len(), 5, "{reasons:#?}");
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("../evil") && x.contains("traversal"))
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("/etc/desc") && x.contains("absolute"))
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("broken") && x.contains("malformed"))
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("huge") && x.contains("over the limit"))
    );
    assert!(reasons.iter().any(|x| x.contains("slash")));
    let pacman = &r.jobs[0];
    assert_eq!(pacman.subjects[0].sha256.to_hex(), "01".repeat(32));
}

#[test]
fn debian_hostile_stanzas_are_refused_and_the_rest_syncs() {
    let good = fixture("debian/Packages_hello.stanza");
    let evil = good.replace("Package: hello", "Package: evil").replace(
        "pool/main/h/hello/hello_2.10-3_amd64.deb",
        "../../etc/passwd",
    );
    let nosha = good
        .replace("Package: hello", "Package: nosha")
        .replace("SHA256:", "X-SHA:");
    let packages = format!("{good}\n\n{evil}\n\n{nosha}\n");
    let r = debian::parse(
        &packages,
        &fixture("debian/Sources_hello.stanza"),
        "bookworm",
        "main",
        "amd64",
        "https://deb.debian.org/debian",
        &Filter::all(),
    );
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(r.refused.len(), 2, "{:?}", r.refused);
}

fn xz_bytes(data: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(data, 1)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn write_mirror(root: &Path) {
    // Arch: core.db as zstd (named .db: the format comes from magic bytes).
    let tar = db(&[
        (b"pacman-5.2.2-1/desc", desc("pacman", "pacman", 1)),
        (b"libalpm-5.2.2-1/desc", desc("libalpm", "pacman", 2)),
    ]);
    let arch_dir = root.join("core/os/x86_64");
    std::fs::create_dir_all(&arch_dir).unwrap();
    let core_db = zstd::bulk::compress(&tar, 3).unwrap();
    std::fs::write(
        arch_dir.join("core.db.sig"),
        release::sign_detached(&core_db, &test_secret_key()).unwrap(),
    )
    .unwrap();
    std::fs::write(arch_dir.join("core.db"), core_db).unwrap();
    // Debian: Packages.xz and Sources.xz.
    let bin = root.join("dists/bookworm/main/binary-amd64");
    let src = root.join("dists/bookworm/main/source");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let xz = |text: String| xz_bytes(text.as_bytes());
    std::fs::write(
        bin.join("Packages.xz"),
        xz(fixture("debian/Packages_hello.stanza")),
    )
    .unwrap();
    std::fs::write(
        src.join("Sources.xz"),
        xz(fixture("debian/Sources_hello.stanza")),
    )
    .unwrap();
    std::fs::write(
        bin.join("Packages"),
        fixture("debian/Packages_hello.stanza"),
    )
    .unwrap();
    release::write_inrelease(&root.join("dists/bookworm"), "bookworm", &test_secret_key()).unwrap();
    // A decompression bomb as another repository.
    let bomb_dir = root.join("bomb/os/x86_64");
    std::fs::create_dir_all(&bomb_dir).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 128 << 20]).unwrap();
    std::fs::write(bomb_dir.join("bomb.db"), gz.finish().unwrap()).unwrap();
}

#[test]
fn vouchd_sync_dry_run_one_off() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mirror");
    write_mirror(&root);
    let vouchd = env!("CARGO_BIN_EXE_vouchd");
    let arch_mirror = format!("file://{}/$repo/os/$arch", root.display());
    let out = Command::new(vouchd)
        .args(["--data-dir", t.path().join("d").to_str().unwrap()])
        .args([
            "sync",
            "--dry-run",
            "--json",
            "--distribution",
            "archlinux",
            "--mirror",
            &arch_mirror,
        ])
        .args(["--repo", "core", "--architecture", "x86_64"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "one job for the split package");
    assert_eq!(lines[0]["source"], "pacman");
    assert_eq!(lines[0]["subjects"].as_array().unwrap().len(), 2);
    assert_eq!(lines[0]["subjects"][0]["sha256"], "01".repeat(32));

    let deb_mirror = format!("file://{}", root.display());
    let out = Command::new(vouchd)
        .args(["--data-dir", t.path().join("d").to_str().unwrap()])
        .args([
            "sync",
            "--dry-run",
            "--json",
            "--distribution",
            "debian",
            "--mirror",
            &deb_mirror,
        ])
        .args([
            "--release",
            "bookworm",
            "--component",
            "main",
            "--architecture",
            "amd64",
        ])
        .args(["--repo-keyring", test_keyring().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["source"], "hello");
    assert_eq!(job["subjects"][0]["filename"], "hello_2.10-3_amd64.deb");

    // The bomb: refused with a clear error; the command still succeeds for
    // the good repository beside it.
    let out = Command::new(vouchd)
        .args(["--data-dir", t.path().join("d").to_str().unwrap()])
        .args([
            "sync",
            "--dry-run",
            "--distribution",
            "archlinux",
            "--mirror",
            &arch_mirror,
        ])
        .args([
            "--repo",
            "bomb",
            "--repo",
            "core",
            "--architecture",
            "x86_64",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bomb.db") && stderr.contains("decompression bomb"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pacman"));
    let _ = fetch::MAX_DECOMPRESSED;
}

#[tokio::test]
async fn an_unchanged_index_is_not_parsed_again() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mirror");
    write_mirror(&root);
    let profile = vouch_node::sync::SyncProfile {
        releases: vec!["bookworm".into()],
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
        keyring: Some(test_keyring()),
        ..vouch_node::sync::SyncProfile::new(
            "p",
            vouch_node::sync::Distribution::Debian,
            &format!("file://{}", root.display()),
        )
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let memo = vouch_node::sync::IndexMemo::default();
    let first = vouch_node::sync::run_profile_with(&client, &profile, Some(&memo))
        .await
        .unwrap();
    assert_eq!(first.jobs.len(), 1);
    assert_eq!(
        first.scopes,
        vec!["debian/bookworm/main/amd64/".to_string()]
    );
    let second = vouch_node::sync::run_profile_with(&client, &profile, Some(&memo))
        .await
        .unwrap();
    assert!(second.jobs.is_empty() && second.scopes.is_empty());
    assert_eq!(second.unchanged.len(), 1);
}

fn profile(
    distribution: vouch_node::sync::Distribution,
    root: &Path,
    keyring: Option<std::path::PathBuf>,
) -> vouch_node::sync::SyncProfile {
    let arch = distribution == vouch_node::sync::Distribution::Archlinux;
    vouch_node::sync::SyncProfile {
        name: "p".into(),
        distribution,
        mirror: if arch {
            format!("file://{}/$repo/os/$arch", root.display())
        } else {
            format!("file://{}", root.display())
        },
        repos: vec!["core".into()],
        releases: vec!["bookworm".into()],
        components: vec!["main".into()],
        architectures: vec![if arch { "x86_64" } else { "amd64" }.into()],
        include: vec![],
        exclude: vec![],
        maintainer: None,
        interval_secs: 60,
        keyring,
        allow_unsigned: false,
        buildinfo: None,
    }
}

/// Runs a profile: its jobs and the reasons of what it refused.
async fn sync(p: &vouch_node::sync::SyncProfile) -> (usize, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = vouch_node::sync::run_profile(&reqwest::Client::new(), p)
        .await
        .unwrap();
    let refused: Vec<String> = r
        .refused
        .iter()
        .map(|x| format!("{}: {}", x.entry, x.reason))
        .collect();
    (r.jobs.len(), refused.join("\n"))
}

#[tokio::test]
async fn a_debian_index_that_does_not_verify_queues_nothing() {
    use vouch_node::sync::Distribution::Debian;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mirror");
    write_mirror(&root);
    let dists = root.join("dists/bookworm");
    assert_eq!(
        sync(&profile(Debian, &root, Some(test_keyring()))).await.0,
        1
    );

    // Signed, but not by a key of the profile's keyring (Debian's own).
    let debian_keys =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/debian/debian-archive-keyring.gpg");
    let (jobs, why) = sync(&profile(Debian, &root, Some(debian_keys))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("InRelease") && why.contains("no good signature"),
        "{why}"
    );

    // A Packages.xz changed after signing.
    let packages = dists.join("main/binary-amd64/Packages.xz");
    let good = std::fs::read(&packages).unwrap();
    let mut bad = good.clone();
    bad.push(0);
    std::fs::write(&packages, &bad).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("Packages.xz") && why.contains("InRelease lists"),
        "{why}"
    );
    std::fs::write(&packages, &good).unwrap();

    // A Sources.xz changed after signing: no job goes without verified
    // source files.
    let sources = dists.join("main/source/Sources.xz");
    let good_sources = std::fs::read(&sources).unwrap();
    std::fs::write(&sources, b"not xz").unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("Sources.xz") && why.contains("nothing of bookworm/main"),
        "{why}"
    );
    std::fs::write(&sources, &good_sources).unwrap();

    // Signed, but decompressing to other text than the plain Packages
    // that InRelease lists (a longer one: the size is checked).
    let plain = dists.join("main/binary-amd64/Packages");
    let good_plain = std::fs::read(&plain).unwrap();
    std::fs::write(&plain, [good_plain.as_slice(), b"\n"].concat()).unwrap();
    release::write_inrelease(&dists, "bookworm", &test_secret_key()).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("decompressed, it is not the main/binary-amd64/Packages that InRelease lists"),
        "{why}"
    );
    // And a shorter one: decompression stops at the listed size.
    std::fs::write(&plain, &good_plain[..good_plain.len() - 1]).unwrap();
    release::write_inrelease(&dists, "bookworm", &test_secret_key()).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("Packages.xz (decompressed; a decompression bomb?) is larger than the limit"),
        "{why}"
    );
    std::fs::write(&plain, &good_plain).unwrap();

    // Signed, but not UTF-8: refused whole, even though the bad byte
    // comes after a stanza that parsed.
    let latin1 = [good_plain.as_slice(), b"\nPackage: caf\xe9\n"].concat();
    std::fs::write(&packages, xz_bytes(&latin1)).unwrap();
    std::fs::write(&plain, &latin1).unwrap();
    release::write_inrelease(&dists, "bookworm", &test_secret_key()).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(why.contains("Packages.xz: not UTF-8"), "{why}");
    std::fs::write(&packages, &good).unwrap();
    std::fs::write(&plain, &good_plain).unwrap();
    release::write_inrelease(&dists, "bookworm", &test_secret_key()).unwrap();
    assert_eq!(
        sync(&profile(Debian, &root, Some(test_keyring()))).await.0,
        1
    );

    // Another release's signed InRelease served for bookworm.
    release::write_inrelease(&dists, "trixie", &test_secret_key()).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(why.contains("not for bookworm"), "{why}");

    // No InRelease at all.
    std::fs::remove_file(dists.join("InRelease")).unwrap();
    let (jobs, why) = sync(&profile(Debian, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(why.contains("InRelease"), "{why}");

    // A keyring that cannot be read is an error of the profile.
    let (jobs, why) = sync(&profile(Debian, &root, Some(root.join("no-such-keyring")))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("keyring") && why.contains("no-such-keyring"),
        "{why}"
    );

    // An unsigned archive is read only when the profile says so.
    let mut unsigned = profile(Debian, &root, None);
    unsigned.allow_unsigned = true;
    assert_eq!(sync(&unsigned).await.0, 1);
}

#[tokio::test]
async fn an_arch_database_is_checked_against_its_signature_when_a_keyring_is_named() {
    use vouch_node::sync::Distribution::Archlinux;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mirror");
    write_mirror(&root);
    let dir = root.join("core/os/x86_64");
    assert_eq!(
        sync(&profile(Archlinux, &root, Some(test_keyring())))
            .await
            .0,
        1
    );
    // Official mirrors are unsigned: without a keyring, no .sig is needed.
    std::fs::remove_file(dir.join("core.db.sig")).unwrap();
    assert_eq!(sync(&profile(Archlinux, &root, None)).await.0, 1);
    let (jobs, why) = sync(&profile(Archlinux, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(
        why.contains("core.db") && why.contains("no signature"),
        "{why}"
    );
    // A signature of other bytes.
    std::fs::write(
        dir.join("core.db.sig"),
        release::sign_detached(b"another database", &test_secret_key()).unwrap(),
    )
    .unwrap();
    let (jobs, why) = sync(&profile(Archlinux, &root, Some(test_keyring()))).await;
    assert_eq!(jobs, 0, "{why}");
    assert!(why.contains("no good signature"), "{why}");
}
