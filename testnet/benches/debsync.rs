//! `cargo build --release && cargo bench -p vouch-testnet --bench debsync`:
//! sync of the real Debian 12 main amd64 `Packages.xz` and main
//! `Sources.xz` (fetched from the archive once), served from loopback, all
//! measured against the floor of the same run: decompressing both `.xz`
//! files with `xz -dc -T1` in parallel.
//!
//! Reports the floor; `vouchd sync --dry-run --json` as a process (wall
//! time, peak memory); the whole real sync into a durable on-disk queue
//! (fetch, decompress, parse, compare with the store, write, flush) and
//! the store it leaves, tree by tree; a second sync of the unchanged
//! index. Times are medians; a ratio is the median of runs each set against
//! the floor measured just before it.

use std::process::{Command, Stdio};
use std::time::Instant;

use vouch_node::store::Store;
use vouch_node::sync::profile::Filter;
use vouch_node::sync::{IndexMemo, SyncProfile, debian, run_profile_with};
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::serve::FileServer;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stanzas(text: &[u8]) -> usize {
    text.split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"Package: "))
        .count()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mirror, packages, sources) = vouch_testnet::debrepo::bookworm_main_mirror();
    let text_bytes = packages.len() + sources.len();
    println!(
        "index: Packages {:.1} MB ({} stanzas), Sources {:.1} MB ({} stanzas)",
        packages.len() as f64 / 1e6,
        stanzas(&packages),
        sources.len() as f64 / 1e6,
        stanzas(&sources),
    );
    let dists = mirror.join("dists/bookworm/main");
    let xz_files = [
        dists.join("binary-amd64/Packages.xz"),
        dists.join("source/Sources.xz"),
    ];

    // The floor: both indexes decompressed at once by xz itself. It is
    // measured again right before every timed run, and each run is set
    // against its own floor: this machine's speed drifts within a minute.
    let floor_once = || {
        let t = Instant::now();
        let children: Vec<_> = xz_files
            .iter()
            .map(|f| {
                Command::new("xz")
                    .args(["-dc", "-T1"])
                    .arg(f)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("xz")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().expect("xz").success());
        }
        t.elapsed().as_secs_f64()
    };
    let floor = median((0..5).map(|_| floor_once()).collect());
    println!("floor: `xz -dc -T1` of both indexes in parallel: {floor:.3} s");

    // Parsing alone, in memory.
    let p = String::from_utf8(packages.clone()).expect("utf8");
    let s = String::from_utf8(sources.clone()).expect("utf8");
    let t = Instant::now();
    let parsed = debian::parse(
        &p,
        &s,
        "bookworm",
        "main",
        "amd64",
        "http://x",
        &Filter::all(),
    );
    let parse = t.elapsed().as_secs_f64();
    println!(
        "parse only, one thread: {parse:.2} s = {:.0} MB/s; {} jobs, {} refused entries",
        text_bytes as f64 / 1e6 / parse,
        parsed.jobs.len(),
        parsed.refused.len()
    );
    drop((parsed, p, s));

    // The mirror is signed with the test-only key, so the sync verifies
    // InRelease and both indexes as it would against the archive.
    let server = FileServer::start(mirror.clone()).expect("server");
    let dir = tempfile::tempdir().expect("tempdir");

    // The dry run as a user runs it: the real binary, its output read.
    if let Ok(vouchd) = sibling_binary("vouchd") {
        let keyring = vouch_testnet::debrepo::archive_keyring();
        let mut peak_kb = 0.0f64;
        let mut jobs = 0;
        let runs: Vec<(f64, f64)> = (0..5)
            .map(|_| {
                let floor = floor_once();
                let t = Instant::now();
                let out = Command::new("/usr/bin/time")
                    .args(["-f", "%M"])
                    .arg(&vouchd)
                    .args(["--data-dir", dir.path().join("d").to_str().expect("path")])
                    .args(["sync", "--dry-run", "--json", "--distribution", "debian"])
                    .args(["--mirror", &server.url, "--release", "bookworm"])
                    .args(["--component", "main", "--architecture", "amd64"])
                    .arg("--repo-keyring")
                    .arg(&keyring)
                    .output()
                    .expect("vouchd sync");
                let wall = t.elapsed().as_secs_f64();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{stderr}");
                jobs = out
                    .stdout
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
                let kb: f64 = stderr
                    .lines()
                    .last()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0.0);
                peak_kb = peak_kb.max(kb);
                (wall, wall / floor)
            })
            .collect();
        let wall = median(runs.iter().map(|r| r.0).collect());
        let ratio = median(runs.iter().map(|r| r.1).collect());
        println!(
            "`vouchd sync --dry-run --json` over loopback: {wall:.3} s = {ratio:.2}x its floor (goal <= 1.5x); {jobs} JSON lines; peak memory {:.0} MB = {:.2}x the uncompressed index (goal < 3x)",
            peak_kb / 1000.0,
            peak_kb * 1000.0 / text_bytes as f64
        );
    } else {
        println!("(no vouchd binary beside the bench: `cargo build --release` first)");
    }

    let profile = SyncProfile {
        buildinfo: None,
        ..vouch_testnet::debrepo::profile("bookworm-main", &server.url)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let client = reqwest::Client::new();

    // The whole real sync into a fresh durable store, five times.
    let mut runs = Vec::new();
    let mut last = None;
    for i in 0..5 {
        let path = dir.path().join(format!("store-{i}"));
        let store = Store::open(&path).expect("store");
        let memo = IndexMemo::default();
        let floor = floor_once();
        let t = Instant::now();
        let first = rt
            .block_on(run_profile_with(&client, &profile, Some(&memo)))
            .expect("sync");
        let read = t.elapsed().as_secs_f64();
        let new = store
            .enqueue_sync(&first.scopes, &first.jobs, 1)
            .expect("enqueue");
        let whole = t.elapsed().as_secs_f64();
        assert_eq!(new, first.jobs.len());
        runs.push((whole, read, whole / floor, read / floor));
        last = Some((store, memo, first.jobs.len()));
    }
    let whole = median(runs.iter().map(|r| r.0).collect());
    let read = median(runs.iter().map(|r| r.1).collect());
    let ratio = median(runs.iter().map(|r| r.2).collect());
    let read_ratio = median(runs.iter().map(|r| r.3).collect());
    let (store, memo, jobs) = last.expect("five runs");
    println!(
        "durable sync of {jobs} new jobs (fetch, xz, parse: {read:.2} s = {read_ratio:.2}x its floor; queue and flush: {:.2} s): {whole:.2} s = {ratio:.2}x its floor (goal <= 2x)",
        whole - read,
    );
    println!(
        "  each run against the floor measured just before it: {}",
        runs.iter()
            .map(|r| format!("{:.2}x", r.2))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let disk = store.size_on_disk().expect("size");
    println!(
        "  store on disk right after: {:.1} MB = {:.2} KB per job (goal <= 1 KB)",
        disk as f64 / 1e6,
        disk as f64 / 1e3 / jobs.max(1) as f64
    );
    store.settle().expect("settle");
    let disk = store.size_on_disk().expect("size");
    println!(
        "  once every memtable is flushed: {:.1} MB = {:.2} KB per job (goal <= 1 KB)",
        disk as f64 / 1e6,
        disk as f64 / 1e3 / jobs.max(1) as f64
    );
    for t in store.tree_sizes().expect("trees") {
        if t.entries > 0 {
            println!(
                "    {:<24} {:>8} entries, {:>6.1} MB of keys and values ({:.0} B per job)",
                t.name,
                t.entries,
                t.bytes as f64 / 1e6,
                t.bytes as f64 / jobs.max(1) as f64
            );
        }
    }

    let t = Instant::now();
    let second = rt
        .block_on(run_profile_with(&client, &profile, Some(&memo)))
        .expect("sync");
    let new2 = store
        .enqueue_sync(&second.scopes, &second.jobs, 2)
        .expect("enqueue");
    let again = t.elapsed().as_secs_f64();
    println!(
        "second sync, index unchanged: {again:.3} s ({:.3} of the first), {new2} jobs queued, {} indexes skipped (goal: nothing queued, < 0.1)",
        again / whole,
        second.unchanged.len()
    );
}
