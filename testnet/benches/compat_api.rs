//! `cargo bench -p vouch-testnet --bench compat_api`: the rebuilderd-
//! compatible API of a `vouchd` that synced the real Debian 12 main amd64
//! index (about 34,000 sources, 63,000 binaries; served from loopback):
//!
//! - `rebuildctl pkgs ls` of the whole table (its pages of 1,000 sorted by
//!   name), and the cost of one page at the start, the middle and the end;
//! - `GET /api/v0/pkgs/list` of the whole table;
//! - the dashboard's first byte.
//!
//! With `rebuilderd` on PATH (or `VOUCH_BENCH_REBUILDERD=/path/to/rebuilderd`)
//! the same index is imported into it with `rebuildctl pkgs sync` and the
//! same figures are measured against it in the same run, as the baseline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vouch_testnet::debrepo;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::serve::FileServer;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn client() -> (tokio::runtime::Runtime, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (rt, reqwest::Client::new())
}

/// GET `url`: seconds to the first byte (headers), seconds in all, bytes.
fn get(rt: &tokio::runtime::Runtime, c: &reqwest::Client, url: &str) -> (f64, f64, Vec<u8>) {
    rt.block_on(async {
        let t = Instant::now();
        let r = c.get(url).send().await.expect("request");
        let first = t.elapsed().as_secs_f64();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let body = r.bytes().await.expect("body").to_vec();
        (first, t.elapsed().as_secs_f64(), body)
    })
}

/// `rebuildctl pkgs ls` against `url`: seconds and rows printed.
fn pkgs_ls(url: &str) -> (f64, usize) {
    let t = Instant::now();
    let out = Command::new("rebuildctl")
        .args(["-H", url, "pkgs", "ls"])
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stderr(Stdio::inherit())
        .output()
        .expect("rebuildctl");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "rebuildctl pkgs ls failed");
    (
        secs,
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
    )
}

/// The cost of pages of 1,000 sorted by name, walking the whole table as
/// rebuildctl does: (first five, middle five, last five) medians in
/// seconds, and the number of pages.
fn page_costs(
    rt: &tokio::runtime::Runtime,
    c: &reqwest::Client,
    url: &str,
) -> (f64, f64, f64, usize) {
    let mut times = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let q = match after {
            Some(a) => format!("{url}/api/v1/packages/binary?limit=1000&sort=name&after={a}"),
            None => format!("{url}/api/v1/packages/binary?limit=1000&sort=name"),
        };
        let (_, secs, body) = get(rt, c, &q);
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let records = page["records"].as_array().expect("records");
        let Some(last) = records.last() else { break };
        after = last["id"].as_u64();
        times.push(secs);
    }
    let n = times.len();
    let mid = n / 2;
    (
        median(times[..5.min(n)].to_vec()),
        median(times[mid.saturating_sub(2)..(mid + 3).min(n)].to_vec()),
        median(times[n.saturating_sub(5)..].to_vec()),
        n,
    )
}

struct Figures {
    rows: usize,
    ls: f64,
    pages: (f64, f64, f64, usize),
    v0: f64,
    v0_bytes: usize,
}

fn measure(url: &str, label: &str) -> Figures {
    let (rt, c) = client();
    let (ls, rows) = pkgs_ls(url);
    let pages = page_costs(&rt, &c, url);
    let mut v0 = Vec::new();
    let mut v0_bytes = 0;
    for _ in 0..3 {
        let (_, secs, body) = get(&rt, &c, &format!("{url}/api/v0/pkgs/list"));
        v0.push(secs);
        v0_bytes = body.len();
    }
    let f = Figures {
        rows,
        ls,
        pages,
        v0: median(v0),
        v0_bytes,
    };
    println!(
        "{label}: rebuildctl pkgs ls {:.2} s for {} rows ({:.1} µs/row); page of 1,000: first {:.3} s, middle {:.3} s, last {:.3} s ({} pages); GET /api/v0/pkgs/list {:.3} s, {:.1} MB",
        f.ls,
        f.rows,
        f.ls * 1e6 / f.rows.max(1) as f64,
        f.pages.0,
        f.pages.1,
        f.pages.2,
        f.pages.3,
        f.v0,
        f.v0_bytes as f64 / 1e6
    );
    f
}

fn wait_total(url: &str, min: u64, limit: Duration) -> u64 {
    let (rt, c) = client();
    let deadline = Instant::now() + limit;
    let mut last = 0;
    loop {
        if let Ok(r) = rt.block_on(async {
            c.get(format!("{url}/api/v1/packages/binary?limit=1"))
                .send()
                .await?
                .json::<serde_json::Value>()
                .await
        }) {
            let total = r["total"].as_u64().unwrap_or(0);
            if total >= min && total == last {
                return total;
            }
            last = total;
        }
        assert!(
            Instant::now() < deadline,
            "the table never filled ({last} rows)"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Starts rebuilderd (the baseline) on the same mirror; its URL, when the
/// binary is here.
fn rebuilderd(dir: &Path, mirror_url: &str) -> Option<(std::process::Child, String)> {
    let bin = std::env::var("VOUCH_BENCH_REBUILDERD").unwrap_or_else(|_| "rebuilderd".into());
    if Command::new(&bin).arg("--version").output().is_err() {
        println!(
            "rebuilderd: not installed; no baseline in this run (VOUCH_BENCH_REBUILDERD=PATH to give one)"
        );
        return None;
    }
    let work = dir.join("rebuilderd");
    std::fs::create_dir_all(&work).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    std::fs::write(work.join("cookie"), "bench-cookie").expect("cookie");
    std::fs::write(
        work.join("rebuilderd.conf"),
        format!("[http]\nbind_addr = \"127.0.0.1:{port}\"\n\n[auth]\ncookie = \"bench-cookie\"\n"),
    )
    .expect("conf");
    let child = Command::new(&bin)
        .arg("-c")
        .arg(work.join("rebuilderd.conf"))
        .current_dir(&work)
        .env("REBUILDERD_COOKIE_PATH", work.join("cookie"))
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(work.join("log"))
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}");
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    let status = Command::new("rebuildctl")
        .args(["-H", &url, "pkgs", "sync", "debian", mirror_url])
        .args([
            "--release",
            "bookworm",
            "--component",
            "main",
            "--architecture",
            "amd64",
        ])
        .env("REBUILDERD_COOKIE_PATH", work.join("cookie"))
        .env("HOME", "/nonexistent")
        .status()
        .ok()?;
    if !status.success() {
        println!(
            "rebuilderd: the import failed; no baseline in this run (log: {})",
            work.join("log").display()
        );
        return None;
    }
    println!(
        "rebuilderd: imported the index in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Some((child, url))
}

fn main() {
    let (mirror, _, _) = debrepo::bookworm_main_mirror();
    let server = FileServer::start(mirror).expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("vouchd");
    std::fs::create_dir_all(&data).expect("dir");
    std::fs::write(
        data.join("vouchd.toml"),
        format!(
            "[[sync]]\nname = \"bookworm-main\"\ndistribution = \"debian\"\nmirror = \"{}\"\n\
             releases = [\"bookworm\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n\
             keyring = \"{}\"\n",
            server.url,
            debrepo::archive_keyring().display()
        ),
    )
    .expect("config");
    let t = Instant::now();
    let node = NodeProcess::start(&data, &["--sync-interval", "3600"]).expect("vouchd");
    let total = wait_total(node.url(), 10_000, Duration::from_secs(600));
    println!(
        "vouchd: synced {total} binary packages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let vouch = measure(node.url(), "vouchd");

    let (rt, c) = client();
    let mut first = Vec::new();
    for _ in 0..20 {
        first.push(get(&rt, &c, &format!("{}/", node.url())).0);
    }
    println!(
        "vouchd: dashboard first byte {:.1} ms (median of 20; goal < 50 ms)",
        median(first) * 1e3
    );

    if let Some((mut child, url)) = rebuilderd(dir.path(), &server.url) {
        wait_total(&url, 1, Duration::from_secs(600));
        let base = measure(&url, "rebuilderd");
        let per_row = |f: &Figures| f.ls / f.rows.max(1) as f64;
        println!(
            "ratio vouchd/rebuilderd: pkgs ls per row {:.3} (goal <= 0.25); last page / first page: vouchd {:.2}, rebuilderd {:.2}; v0 whole table {:.3}",
            per_row(&vouch) / per_row(&base),
            vouch.pages.2 / vouch.pages.0,
            base.pages.2 / base.pages.0,
            vouch.v0 / base.v0
        );
        let _ = child.kill();
    }
}
