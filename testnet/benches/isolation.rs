//! `cargo bench -p vouch-testnet --bench isolation`: the test package
//! `vouch-repro-test` built on the host (isolation `none`: plain
//! `dpkg-buildpackage` in an unpacked tree, median of 3) and rebuilt by the
//! debian backend in its recorded environment: under `namespace` with
//! nothing cached (the environment assembled), under `namespace` with the
//! environment cached (median of 3), and under `vm` with software emulation
//! (environment cached); ratios against the host build of the same run,
//! and the time to prepare the environment and the guest image. Needs what
//! `testnet/tests/isolation.rs` needs (mmdebstrap, uidmap, qemu, the build
//! user, deb.debian.org).

use std::time::{Duration, Instant};

use vouch_node::backend::BackendConfig;
use vouch_node::backend::debian::DebianBackend;

use vouch_testnet::debrepo::{
    self, Variant, distribution_build, publish, sh, source_package, tools_present,
};

fn main() {
    if !tools_present() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = tempfile::tempdir().expect("tempdir");
    let (src, built, mirror) = (
        t.path().join("src"),
        t.path().join("built"),
        t.path().join("mirror"),
    );
    for d in [&src, &built] {
        std::fs::create_dir_all(d).expect("dirs");
    }
    let name = "vouch-repro-test";
    source_package(
        &src,
        &Variant {
            name,
            build_extra: String::new(),
        },
    );

    // Host build: the unpacked tree, dpkg-buildpackage, nothing else.
    let host = t.path().join("host");
    std::fs::create_dir_all(&host).expect("dirs");
    sh(
        &host,
        &format!(
            "dpkg-source -x {}/{name}_1.0.dsc tree >/dev/null",
            src.display()
        ),
    );
    let host_build = median(
        (0..3)
            .map(|_| {
                let start = Instant::now();
                sh(
                    &host.join("tree"),
                    "dpkg-buildpackage -b -uc -us >/dev/null 2>&1",
                );
                start.elapsed()
            })
            .collect(),
    );

    distribution_build(&src, &built, &[name]);
    publish(&src, &built, &mirror, &[name]);
    let profile = debrepo::profile("bench", &format!("file://{}", mirror.display()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let jobs = rt
        .block_on(vouch_node::sync::run_profile(
            &reqwest::Client::new(),
            &profile,
        ))
        .expect("sync")
        .jobs;
    let job = &jobs[0];
    let cache = t.path().join("cache");
    let namespace = BackendConfig::Debian(DebianBackend {
        cache: Some(cache.clone()),
        ..DebianBackend::default()
    });
    let image = t.path().join("guest.img");
    let start = Instant::now();
    rt.block_on(vouch_node::vm::image::build(
        &vouch_node::vm::image::ImageRecipe::default(),
        &image,
    ))
    .expect("guest image");
    let image_build = start.elapsed();
    let mut vm = DebianBackend {
        cache: Some(cache.clone()),
        isolation: vouch_node::backend::debian::Isolation::Vm,
        ..DebianBackend::default()
    };
    vm.vm.image = Some(image);
    vm.vm.accel = vouch_node::vm::Accel::Tcg;
    let vm = BackendConfig::Debian(vm);
    let mut prepared = None;
    let mut rebuild = |tag: &str, backend: &BackendConfig| -> Duration {
        let work = t.path().join(format!("work-{tag}"));
        let input = work.join("input");
        std::fs::create_dir_all(input.join("src")).expect("dirs");
        let pool = mirror.join(format!("pool/main/v/{name}"));
        for f in [format!("{name}_1.0.dsc"), format!("{name}_1.0.tar.xz")] {
            std::fs::copy(pool.join(&f), input.join("src").join(&f)).expect("copy");
        }
        std::fs::copy(
            pool.join(format!("{name}_1.0_amd64.buildinfo")),
            input.join("buildinfo"),
        )
        .expect("copy");
        std::fs::create_dir_all(work.join("output")).expect("dirs");
        let start = Instant::now();
        let run =
            rt.block_on(backend.build(job, &work, Duration::from_secs(1800), 16 << 20, &[0; 32]));
        let took = start.elapsed();
        let out = work.join(format!("output/{name}_1.0_amd64.deb"));
        let log = String::from_utf8_lossy(&run.log);
        assert!(out.exists(), "{tag} rebuild produced nothing: {log}");
        if let Some(line) = log.lines().find(|l| l.contains(": assembled in ")) {
            prepared = Some(line.to_string());
        }
        took
    };
    let cold = rebuild("cold", &namespace);
    let warm = median(
        (0..3)
            .map(|i| rebuild(&format!("warm-{i}"), &namespace))
            .collect(),
    );
    let in_vm = rebuild("vm", &vm);
    let ratio = |d: Duration| d.as_secs_f64() / host_build.as_secs_f64();
    println!(
        "host build (isolation none): {:.2} s = 1.00x",
        host_build.as_secs_f64()
    );
    println!(
        "namespace rebuild, nothing cached (environment assembled): {:.1} s = {:.1}x",
        cold.as_secs_f64(),
        ratio(cold)
    );
    println!(
        "namespace rebuild, environment cached: {:.2} s = {:.2}x",
        warm.as_secs_f64(),
        ratio(warm)
    );
    println!(
        "vm rebuild (tcg, software emulation), environment cached: {:.1} s = {:.1}x",
        in_vm.as_secs_f64(),
        ratio(in_vm)
    );
    println!(
        "environment preparation: cold {}; from the cache {:.2} s (the namespace rebuild above, all of it)",
        prepared.as_deref().unwrap_or("(not logged)"),
        warm.as_secs_f64()
    );
    println!(
        "guest image (vouchd vm build-image): {:.1} s",
        image_build.as_secs_f64()
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
