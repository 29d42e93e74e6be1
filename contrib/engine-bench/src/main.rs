//! Index engines compared on vouch's two write-heavy workloads (see
//! README.md):
//!
//!     engine-bench verdicts N DIR
//!     engine-bench jobs JSONL DIR
//!
//! (`write ENGINE DIR N` and `open ENGINE DIR N` are the fresh processes
//! `verdicts` starts for each engine.)
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Instant;

type Write = (usize, Vec<u8>, Vec<u8>);

trait Engine {
    /// Gives back the space an engine leaves behind (compaction).
    fn settle(&mut self) {}
    fn commit(&mut self, writes: &[Write], durable: bool);
    fn prefix_count(&self, tree: usize, prefix: &[u8]) -> usize;
}

const TREES: [&str; 8] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];

struct Sled(sled::Db, Vec<sled::Tree>);
impl Sled {
    /// As `vouchd` opens it; `segment_size` in bytes (sled's default is
    /// 512 KiB, and it cannot change on an existing database).
    fn open(dir: &Path, segment_size: usize) -> Self {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 << 20)
            .mode(sled::Mode::LowSpace)
            .segment_size(segment_size)
            .open()
            .unwrap();
        let trees = TREES.iter().map(|t| db.open_tree(t).unwrap()).collect();
        Sled(db, trees)
    }
}
impl Engine for Sled {
    fn commit(&mut self, writes: &[Write], durable: bool) {
        use sled::Transactional;
        self.1[..]
            .transaction(|txs| {
                for (t, k, v) in writes {
                    txs[*t].insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        if durable {
            self.0.flush().unwrap();
        }
    }
    fn prefix_count(&self, tree: usize, prefix: &[u8]) -> usize {
        self.1[tree].scan_prefix(prefix).count()
    }
}

struct Redb(redb::Database);
const RT: [redb::TableDefinition<&[u8], &[u8]>; 8] = [
    redb::TableDefinition::new("t0"),
    redb::TableDefinition::new("t1"),
    redb::TableDefinition::new("t2"),
    redb::TableDefinition::new("t3"),
    redb::TableDefinition::new("t4"),
    redb::TableDefinition::new("t5"),
    redb::TableDefinition::new("t6"),
    redb::TableDefinition::new("t7"),
];
impl Redb {
    fn open(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let db = redb::Builder::new()
            .set_cache_size(256 << 20)
            .create(dir.join("db.redb"))
            .unwrap();
        Redb(db)
    }
}
impl Engine for Redb {
    fn settle(&mut self) {
        self.0.compact().unwrap();
    }
    fn commit(&mut self, writes: &[Write], durable: bool) {
        let mut tx = self.0.begin_write().unwrap();
        tx.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        });
        {
            let mut tables: Vec<_> = RT.iter().map(|d| tx.open_table(*d).unwrap()).collect();
            for (t, k, v) in writes {
                tables[*t].insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn prefix_count(&self, tree: usize, prefix: &[u8]) -> usize {
        let tx = self.0.begin_read().unwrap();
        let t = tx.open_table(RT[tree]).unwrap();
        let mut n = 0;
        for item in t.range(prefix..).unwrap() {
            let (k, _) = item.unwrap();
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        n
    }
}

struct Fjall(fjall::Keyspace, Vec<fjall::PartitionHandle>);
impl Fjall {
    fn open(dir: &Path) -> Self {
        let ks = fjall::Config::new(dir)
            .cache_size(256 << 20)
            .open()
            .unwrap();
        let parts = TREES
            .iter()
            .map(|t| {
                ks.open_partition(t, fjall::PartitionCreateOptions::default())
                    .unwrap()
            })
            .collect();
        Fjall(ks, parts)
    }
}
impl Engine for Fjall {
    fn settle(&mut self) {
        for p in &self.1 {
            p.rotate_memtable_and_wait().unwrap();
            p.major_compact().unwrap();
        }
        self.0.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    fn commit(&mut self, writes: &[Write], durable: bool) {
        let mut b = self.0.batch();
        for (t, k, v) in writes {
            b.insert(&self.1[*t], k.as_slice(), v.as_slice());
        }
        b.commit().unwrap();
        if durable {
            self.0.persist(fjall::PersistMode::SyncData).unwrap();
        }
    }
    fn prefix_count(&self, tree: usize, prefix: &[u8]) -> usize {
        self.1[tree].prefix(prefix).count()
    }
}

fn open(engine: &str, dir: &Path) -> Box<dyn Engine> {
    match engine {
        "sled" => Box::new(Sled::open(dir, 512 << 10)),
        "sled-8m" => Box::new(Sled::open(dir, 8 << 20)),
        "redb" => Box::new(Redb::open(dir)),
        "fjall" => Box::new(Fjall::open(dir)),
        _ => panic!("engine"),
    }
}

fn du(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    n
}

fn sha(x: &[u8]) -> [u8; 32] {
    Sha256::digest(x).into()
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Lets the engine compact, closes it, and returns the bytes it leaves
/// (printing what it held before, per `unit`).
fn settle(mut e: Box<dyn Engine>, engine: &str, dir: &Path, unit: &str, count: f64) -> u64 {
    let before = du(dir);
    let t = Instant::now();
    e.settle();
    let took = t.elapsed().as_secs_f64();
    drop(e);
    println!(
        "  {engine}: before settling {:.0} B per {unit}; settling took {took:.2} s",
        before as f64 / count
    );
    du(dir)
}

const SIGNERS: u64 = 20;
const ARTIFACTS: u64 = 500_000;

/// The index writes of verdict number i: as vouch-store-3 keys them.
fn verdict_writes(i: u64, out: &mut Vec<Write>) {
    let signer_n = i % SIGNERS;
    let seq = i / SIGNERS;
    let artifact_n = seq % ARTIFACTS;
    let signer = sha(&signer_n.to_be_bytes());
    let artifact = sha(&[b"a".as_slice(), &artifact_n.to_be_bytes()].concat());
    let id = sha(&[b"v".as_slice(), &i.to_be_bytes()].concat());
    let ptr = {
        let mut p = [0u8; 12];
        p[..4].copy_from_slice(&((i * 700) >> 26).to_be_bytes()[4..]);
        p[4..8].copy_from_slice(&(((i * 700) & ((1 << 26) - 1)) as u32).to_be_bytes());
        p[8..].copy_from_slice(&700u32.to_be_bytes());
        p
    };
    out.push((0, id.to_vec(), ptr.to_vec()));
    out.push((1, [&signer[..], &seq.to_be_bytes()].concat(), ptr.to_vec()));
    out.push((
        2,
        [&artifact[..], &signer[..], &seq.to_be_bytes()].concat(),
        ptr.to_vec(),
    ));
    let name = format!("archlinux\0-\0core\0package-{artifact_n}\01.{seq}-1\0");
    out.push((3, [name.as_bytes(), &ptr[..]].concat(), Vec::new()));
}

fn write_verdicts(engine: &str, dir: &Path, n: u64) {
    let mut e = open(engine, dir);
    let t = Instant::now();
    let mut chunk_rates = Vec::new();
    let mut tc = Instant::now();
    let mut writes = Vec::new();
    let group = 1000;
    let chunk = (n / 10).max(group);
    for start in (0..n).step_by(group as usize) {
        writes.clear();
        for i in start..(start + group).min(n) {
            verdict_writes(i, &mut writes);
        }
        // heads and the durable end, overwritten each group
        writes.push((4, b"heads".to_vec(), start.to_be_bytes().to_vec()));
        writes.push((5, b"segment-end".to_vec(), start.to_be_bytes().to_vec()));
        e.commit(&writes, true);
        if (start + group) % chunk == 0 {
            chunk_rates.push(chunk as f64 / tc.elapsed().as_secs_f64());
            tc = Instant::now();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let disk = settle(e, engine, dir, "verdict", n as f64);
    println!(
        "{engine} verdicts {n}: {:.0}/s (first chunk {:.0}/s, last {:.0}/s); disk {:.0} B per verdict; peak RSS {} MiB",
        n as f64 / secs,
        chunk_rates.first().unwrap_or(&0.0),
        chunk_rates.last().unwrap_or(&0.0),
        disk as f64 / n as f64,
        rss_kb("VmHWM:") / 1024
    );
}

fn open_verdicts(engine: &str, dir: &Path, n: u64) {
    let t = Instant::now();
    let e = open(engine, dir);
    let opened = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut found = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let arts = (n / SIGNERS).min(ARTIFACTS);
    for _ in 0..2000 {
        let a = rng.gen_range(0..arts);
        let artifact = sha(&[b"a".as_slice(), &a.to_be_bytes()].concat());
        found += e.prefix_count(2, &artifact);
    }
    let lookups = t.elapsed().as_secs_f64();
    println!(
        "{engine} reopen of {n}: open {opened:.3} s; 2,000 artifact scans {:.0} ms ({found} entries); RSS {} MiB",
        lookups * 1000.0,
        rss_kb("VmRSS:") / 1024
    );
}

fn jobs(engine: &str, dir: &Path, jsonl: &Path) {
    let text = std::fs::read_to_string(jsonl).unwrap();
    let jobs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut e = open(engine, dir);
    let t = Instant::now();
    let mut writes = Vec::new();
    let (mut job_id, mut pkg_id) = (1u32, 1u32);
    let mut raw = 0usize;
    for (ci, chunk) in jobs.chunks(1000).enumerate() {
        writes.clear();
        for j in chunk {
            let s = |k: &str| j[k].as_str().unwrap_or("-").to_string();
            let key = format!(
                "{}/{}/{}/{}/{}/{}",
                s("distribution"),
                s("release"),
                s("component"),
                s("architecture"),
                s("source"),
                s("version")
            );
            let record = if std::env::var("COMPACT").is_ok() {
                // Without the fields its key already says.
                let mut v = j.clone();
                if let Some(o) = v.as_object_mut() {
                    for f in [
                        "distribution",
                        "release",
                        "component",
                        "architecture",
                        "source",
                        "version",
                    ] {
                        o.remove(f);
                    }
                }
                serde_cbor::to_vec(&v).unwrap()
            } else {
                serde_cbor::to_vec(j).unwrap()
            };
            writes.push((0, key.clone().into_bytes(), record));
            writes.push((
                1,
                [&[1u8][..], &1u64.to_be_bytes(), key.as_bytes()].concat(),
                Vec::new(),
            ));
            writes.push((2, key.clone().into_bytes(), [0u8; 12].to_vec()));
            writes.push((3, job_id.to_be_bytes().to_vec(), key.clone().into_bytes()));
            for sub in j["subjects"].as_array().unwrap() {
                let row = serde_json::json!({"job": key, "name": sub["name"], "version": sub["version"],
                    "source": j["source"], "url": sub["path"], "sha256": sub["sha256"]});
                let row = if std::env::var("COMPACT").is_ok() {
                    [&job_id.to_be_bytes()[..], &[0u8, 0]].concat()
                } else {
                    serde_cbor::to_vec(&row).unwrap()
                };
                writes.push((4, pkg_id.to_be_bytes().to_vec(), row));
                let name = sub["name"].as_str().unwrap();
                writes.push((
                    5,
                    [name.as_bytes(), &[0], &pkg_id.to_be_bytes()].concat(),
                    Vec::new(),
                ));
                let hex = sub["sha256"].as_str().unwrap();
                let digest: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                writes.push((6, [&digest[..], &pkg_id.to_be_bytes()].concat(), Vec::new()));
                pkg_id += 1;
            }
            job_id += 1;
        }
        raw += writes.iter().map(|w| w.1.len() + w.2.len()).sum::<usize>();
        let last = (ci + 1) * 1000 >= jobs.len();
        e.commit(&writes, last);
    }
    let secs = t.elapsed().as_secs_f64();
    let disk = settle(e, engine, dir, "job", jobs.len() as f64);
    println!(
        "{engine} jobs {}: {secs:.2} s; raw {:.0} B per job; disk {:.0} B per job",
        jobs.len(),
        raw as f64 / jobs.len() as f64,
        disk as f64 / jobs.len() as f64
    );
}

const ENGINES: [&str; 4] = ["sled", "sled-8m", "redb", "fjall"];

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: engine-bench verdicts N DIR | jobs JSONL DIR";
    match a.get(1).map(String::as_str) {
        Some("verdicts") if a.len() == 4 => {
            let n: u64 = a[2].parse().expect(usage);
            for engine in ENGINES {
                let dir = Path::new(&a[3]).join(format!("verdicts-{engine}"));
                let _ = std::fs::remove_dir_all(&dir);
                // Each step in a fresh process, so that each peak RSS is
                // its own: writing, then opening and looking up.
                for step in ["write", "open"] {
                    let status = std::process::Command::new(std::env::current_exe().unwrap())
                        .args([step, engine, dir.to_str().unwrap(), &n.to_string()])
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        Some("write") if a.len() == 5 => {
            write_verdicts(&a[2], Path::new(&a[3]), a[4].parse().expect(usage))
        }
        Some("open") if a.len() == 5 => {
            open_verdicts(&a[2], Path::new(&a[3]), a[4].parse().expect(usage))
        }
        Some("jobs") if a.len() == 4 => {
            for engine in ENGINES {
                let dir = Path::new(&a[3]).join(format!("jobs-{engine}"));
                let _ = std::fs::remove_dir_all(&dir);
                jobs(engine, &dir, Path::new(&a[2]));
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
