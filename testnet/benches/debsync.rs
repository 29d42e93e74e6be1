//! `cargo build --release && cargo bench -p vouch-testnet --bench debsync`:
//! sync of the real Debian 12 main amd64 `Packages` (as `apt-get update`
//! left it on this machine) and main `Sources` (fetched from the archive,
//! since this machine has no deb-src line), served from loopback.
//!
//! Reports wall time, MB/s of index text, peak memory of a `vouchd sync`
//! process, jobs; the whole real sync into a durable on-disk queue; and a
//! second sync of the unchanged index.

use std::process::Command;
use std::time::Instant;

use vouch_node::store::Store;
use vouch_node::sync::profile::Filter;
use vouch_node::sync::{IndexMemo, SyncProfile, debian, run_profile_with};
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::serve::FileServer;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mirror, packages, sources) = vouch_testnet::debrepo::bookworm_main_mirror();
    let text_bytes = packages.len() + sources.len();
    let mb = text_bytes as f64 / 1e6;
    println!(
        "index: Packages {:.1} MB ({} stanzas), Sources {:.1} MB ({} stanzas)",
        packages.len() as f64 / 1e6,
        packages
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(b"Package: "))
            .count(),
        sources.len() as f64 / 1e6,
        sources
            .split(|b| *b == b'\n')
            .filter(|l| l.starts_with(b"Package: "))
            .count()
    );

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
        "parse only: {:.2} s = {:.0} MB/s; {} jobs, {} refused entries",
        parse,
        mb / parse,
        parsed.jobs.len(),
        parsed.refused.len()
    );
    drop(parsed);

    // The mirror is signed with the test-only key, so the sync verifies
    // InRelease and both indexes as it would against the archive.
    // (No .buildinfo template: this measures the sync alone.)
    let server = FileServer::start(mirror.clone()).expect("server");
    let profile = SyncProfile {
        buildinfo: None,
        ..vouch_testnet::debrepo::profile("bookworm-main", &server.url)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let client = reqwest::Client::new();
    let memo = IndexMemo::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("store");

    let t = Instant::now();
    let first = rt
        .block_on(run_profile_with(&client, &profile, Some(&memo)))
        .expect("sync");
    let fetch_parse = t.elapsed().as_secs_f64();
    let jobs = first.jobs.len();
    let t2 = Instant::now();
    let new = store
        .enqueue_sync(&first.scopes, &first.jobs, 1)
        .expect("enqueue");
    let write = t2.elapsed().as_secs_f64();
    let whole = t.elapsed().as_secs_f64();
    println!(
        "first sync over loopback (fetch, xz, parse): {fetch_parse:.2} s = {:.0} MB/s of index text; {jobs} jobs",
        mb / fetch_parse
    );
    println!(
        "  + compare with the store and write {new} new jobs durably: {write:.2} s; whole real sync {whole:.2} s (goal < 5 s)"
    );
    let disk = store.size_on_disk().expect("size");
    println!(
        "  store on disk: {:.1} MB = {:.2} KB per job (jobs, queue, package table)",
        disk as f64 / 1e6,
        disk as f64 / 1e3 / jobs.max(1) as f64
    );

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

    // Peak memory of a real `vouchd sync` process doing the first sync.
    if let Ok(vouchd) = sibling_binary("vouchd") {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(&vouchd)
            .args(["--data-dir", dir.path().join("d").to_str().expect("path")])
            .args([
                "sync",
                "--dry-run",
                "--json",
                "--distribution",
                "debian",
                "--mirror",
                &server.url,
            ])
            .args([
                "--release",
                "bookworm",
                "--component",
                "main",
                "--architecture",
                "amd64",
            ])
            .stdout(std::process::Stdio::null())
            .output()
            .expect("time");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let kb: f64 = stderr
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        println!(
            "peak memory of `vouchd sync --dry-run`: {:.0} MB = {:.2}x the uncompressed index (goal < 3x)",
            kb / 1000.0,
            kb * 1000.0 / text_bytes as f64
        );
    }
}
