//! Real Debian rebuilds on this machine, isolated and in the recorded
//! build environment. The test source packages (testdata/debian/src) are
//! first built the way a distribution builds them — in a fresh `mmdebstrap`
//! chroot of the current bookworm archive, which writes the `.buildinfo` —
//! and published in a signed `file://` apt repository. Then the node syncs
//! that repository and its worker rebuilds each package with the debian
//! backend under `namespace` isolation, from the `.buildinfo`'s exact
//! package versions (fetched from deb.debian.org).
//!
//! Needs `mmdebstrap`, `uidmap`, `dpkg-dev`, the build user of the README
//! and the Debian archive; without the tools it says it skipped (CI
//! installs them and skips nothing).

use std::path::Path;

use vouch_attest::*;
use vouch_node::backend::BackendConfig;
use vouch_node::backend::debian::DebianBackend;
use vouch_testnet::debrepo::{
    self, Variant, distribution_build, publish, source_package, tools_present,
};
use vouch_testnet::rebuild::{self, Guarded, Rebuilt};

async fn rebuild_all(
    mirror: &Path,
    work: &Path,
    backend: DebianBackend,
    only: Option<&str>,
    timeout_secs: u64,
) -> Vec<Rebuilt> {
    let profile = debrepo::profile("test", &format!("file://{}", mirror.display()));
    rebuild::rebuild_all(
        &profile,
        BackendConfig::Debian(backend),
        work,
        only,
        timeout_secs,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_rebuilt_isolated_in_their_recorded_environment() {
    if !tools_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // The node's own files, which no build may read or change.
    let guarded = Guarded::new(t.path());
    let (key, port) = (&guarded.key, guarded.port);
    let escape = t.path().join("escaped");

    let attempt = |name: &str, cmd: String| {
        format!(
            "\tif ( {cmd} ) >/dev/null 2>&1; then echo 'ATTEMPT {name}: SUCCEEDED'; else echo 'ATTEMPT {name}: failed'; fi\n"
        )
    };
    let hostile = [
        attempt("read the key by its path", format!("cat {}", key.display())),
        attempt(
            "read the key by a relative path",
            "cat ../../data/node.key || cat ../../../data/node.key".into(),
        ),
        attempt(
            "read the key through /proc",
            format!(
                "for p in /proc/[0-9]*; do cat $$p/root{} && exit 0; done; exit 1",
                key.display()
            ),
        ),
        attempt(
            "reach the network",
            format!(
                "perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => \"127.0.0.1:{port}\") or exit 1'"
            ),
        ),
        attempt(
            "resolve a host name",
            "getent hosts deb.debian.org".into(),
        ),
        attempt(
            "write outside the output",
            format!("touch {}", escape.display()),
        ),
    ]
    .concat();
    let variants = [
        Variant {
            name: "vouch-repro-test",
            build_extra: String::new(),
        },
        Variant {
            name: "vouch-unrepro-test",
            build_extra: "\tdate +%s%N > built-at\n\tcat built-at >> hello\n".into(),
        },
        Variant {
            name: "vouch-hostile-test",
            build_extra: hostile,
        },
    ];
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    let src = t.path().join("src");
    let built = t.path().join("built");
    let mirror = t.path().join("mirror");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&built).unwrap();
    for v in &variants {
        source_package(&src, v);
    }
    let start = std::time::Instant::now();
    distribution_build(&src, &built, &names);
    eprintln!("distribution build of 3 packages: {:?}", start.elapsed());
    // The distribution's own build ran the hostile attempts too (in its
    // own chroot): the escape marker must not exist on the host.
    let _ = std::fs::remove_file(&escape);
    publish(&src, &built, &mirror, &names);

    let start = std::time::Instant::now();
    let results = rebuild_all(
        &mirror,
        &t.path().join("work"),
        DebianBackend::default(),
        None,
        1800,
    )
    .await;
    eprintln!("3 isolated rebuilds: {:?}", start.elapsed());
    assert_eq!(results.len(), 3);
    for (job, v, log) in &results {
        let buildinfo = std::fs::read(mirror.join(format!(
            "pool/main/v/{0}/{0}_1.0_amd64.buildinfo",
            job.source
        )))
        .unwrap();
        assert_eq!(
            v.inputs.buildinfo_sha256,
            Some(Digest::of(&buildinfo)),
            "the verdict names the .buildinfo: {log}"
        );
        assert!(log.contains("recorded environment:"), "{log}");
        match job.source.as_str() {
            "vouch-repro-test" | "vouch-hostile-test" => {
                assert_eq!(v.outcome, Outcome::Good, "{}: {log}", job.source);
            }
            "vouch-unrepro-test" => {
                let Outcome::Bad { .. } = v.outcome else {
                    panic!("the time-stamped package must be BAD: {log}");
                };
                assert!(v.evidence.diffoscope.is_some(), "BAD carries a diffoscope");
            }
            other => panic!("unexpected job {other}"),
        }
        if job.source == "vouch-hostile-test" {
            let attempts: Vec<&str> = log.lines().filter(|l| l.starts_with("ATTEMPT ")).collect();
            assert_eq!(attempts.len(), 6, "{log}");
            for a in attempts {
                assert!(a.ends_with(": failed"), "{a}");
            }
        }
    }
    guarded.assert_key_unchanged();
    assert!(!escape.exists(), "a build wrote outside its output");

    // The first package again, in a guest under software emulation: the
    // same recorded environment gives the same sha256.
    let image = t.path().join("guest.img");
    let start = std::time::Instant::now();
    let (manifest, sha) =
        vouch_node::vm::image::build(&vouch_node::vm::image::ImageRecipe::default(), &image)
            .await
            .unwrap();
    eprintln!(
        "guest image {sha} ({}): {:?}",
        manifest.kernel,
        start.elapsed()
    );
    let mut backend = DebianBackend {
        isolation: vouch_node::backend::debian::Isolation::Vm,
        ..DebianBackend::default()
    };
    backend.vm.image = Some(image);
    backend.vm.accel = vouch_node::vm::Accel::Tcg;
    let start = std::time::Instant::now();
    let in_vm = rebuild_all(
        &mirror,
        &t.path().join("work-vm"),
        backend.clone(),
        Some("vouch-repro-test"),
        1800,
    )
    .await;
    eprintln!("1 rebuild in a guest (tcg): {:?}", start.elapsed());
    assert_eq!(in_vm.len(), 1);
    let (job, v, log) = &in_vm[0];
    assert_eq!(v.outcome, Outcome::Good, "{log}");
    assert_eq!(job.subjects[0].sha256, v.subject.sha256);
    assert!(
        v.inputs.backend_version.contains(&format!(
            "image sha256 {sha}; accel tcg (software emulation)"
        )),
        "{}",
        v.inputs.backend_version
    );

    // A guest that does not finish in time is killed: FAIL timeout.
    let late = rebuild_all(
        &mirror,
        &t.path().join("work-vm-late"),
        backend,
        Some("vouch-repro-test"),
        15,
    )
    .await;
    assert_eq!(
        late[0].1.outcome,
        Outcome::Fail {
            reason: FailReason::Timeout
        },
        "{}",
        late[0].2
    );
}
