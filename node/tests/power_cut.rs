//! Power cuts at every write boundary of the segment files. `kill -9` keeps
//! the page cache and cannot show a missing sync; here the segment files are
//! an in-memory double that keeps apart what was synced, and a "power cut"
//! throws away everything else (or leaves a torn piece of the first unsynced
//! write). The keyspace's side is its real files: as left when the writer
//! stopped, as they were before the last group commit (the keyspace lost
//! a commit that was never acknowledged), or that with its journal torn in
//! the middle of what was written after it. Each group commit also stores a build log, through
//! the evidence segments, which lose power at the same moment.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use vouch_attest::*;
use vouch_node::store::Store;
use vouch_node::store::segments::{MemIo, SegmentIo};

/// Small enough that the workload fills several segments.
const SEGMENT_LEN: u32 = 1024;

fn workload() -> Vec<Vec<VerifiedVerdict>> {
    let a = chain(&key("A"), 10);
    let b = chain(&key("B"), 10);
    let pick = |v: &[VerifiedVerdict], idx: &[usize]| -> Vec<VerifiedVerdict> {
        idx.iter().map(|i| v[*i].clone()).collect()
    };
    vec![
        [pick(&a, &[0, 1]), pick(&b, &[0])].concat(),
        // B2 is held (B1 is missing), then B1 arrives and both append.
        [pick(&b, &[2]), pick(&a, &[2])].concat(),
        [pick(&b, &[1]), pick(&a, &[3, 4])].concat(),
        [pick(&a, &[5, 6, 7]), pick(&b, &[3])].concat(),
        [pick(&b, &[4, 5, 6, 7, 8, 9]), pick(&a, &[8, 9])].concat(),
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // The journal is preallocated (32 MiB of zeros past its end):
            // copied as a sparse file of the same length.
            let bytes = std::fs::read(entry.path()).unwrap();
            let used = data_len(&bytes);
            std::fs::write(&target, &bytes[..used]).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&target)
                .unwrap()
                .set_len(bytes.len() as u64)
                .unwrap();
        }
    }
}

/// The length of `bytes` without its trailing zeros.
fn data_len(bytes: &[u8]) -> usize {
    // Whole blocks compared at memcmp speed (the tests are not optimized).
    const BLOCK: usize = 64 << 10;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        if bytes[start..end] != ZEROS[..end - start] {
            break;
        }
        end = start;
    }
    bytes[..end]
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1)
}

/// `to` as the keyspace in `before` was, except that the first journal
/// file that grew between `before` and `live` holds half of what was
/// appended to it: the power was cut while the journal was written, after
/// `before` (whose every batch was acknowledged). False when no journal grew.
fn torn_journal(before: &Path, live: &Path, to: &Path) -> bool {
    copy_dir(before, to);
    let journals = |d: &Path| d.join("index").join("journals");
    let mut names: Vec<_> = std::fs::read_dir(journals(live))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort_by_key(|n| n.to_string_lossy().parse::<u64>().unwrap_or(u64::MAX));
    for name in names {
        let grown = std::fs::read(journals(live).join(&name)).unwrap();
        let old = std::fs::read(journals(before).join(&name)).unwrap_or_default();
        let (had, has) = (data_len(&old), data_len(&grown));
        if has > had {
            assert_eq!(old[..had], grown[..had], "the journal is appended to");
            let cut = had + (has - had) / 2;
            let mut torn = grown[..cut].to_vec();
            torn.resize(grown.len(), 0);
            std::fs::write(journals(to).join(&name), torn).unwrap();
            return true;
        }
    }
    false
}

/// The verdict and evidence segments of one store, losing power together.
struct Disks {
    verdicts: Arc<MemIo>,
    evidence: Arc<MemIo>,
}

impl Disks {
    fn new() -> Disks {
        let verdicts = MemIo::new();
        let evidence = MemIo::sharing_power_with(&verdicts);
        Disks {
            verdicts: Arc::new(verdicts),
            evidence: Arc::new(evidence),
        }
    }

    fn open(&self, dir: &Path) -> Store {
        Store::open_with(
            dir,
            self.verdicts.clone(),
            self.evidence.clone(),
            SEGMENT_LEN,
        )
        .unwrap()
    }

    fn power_cut(&self, torn: usize) -> Disks {
        Disks {
            verdicts: Arc::new(self.verdicts.power_cut(torn)),
            evidence: Arc::new(self.evidence.power_cut(torn)),
        }
    }
}

/// The build log stored with group `g`.
fn log_of(g: usize) -> Vec<u8> {
    format!("build log of group {g}\n")
        .repeat(40 + g)
        .into_bytes()
}

/// Closes `stores` side by side: closing one waits for the engine's
/// background threads (up to a quarter of a second), and the tests open
/// hundreds.
fn close_all(stores: Vec<Store>) {
    let closing: Vec<_> = stores
        .into_iter()
        .map(|s| std::thread::spawn(move || drop(s)))
        .collect();
    for c in closing {
        c.join().unwrap();
    }
}

/// Opens what a power cut left and checks it: it opens, it is consistent,
/// every acknowledged verdict and blob is there, and writing goes on.
/// Returns the store, still open.
fn recover(
    dir: &Path,
    disks: Disks,
    acked: &[VerifiedVerdict],
    blobs: &[Vec<u8>],
    next: &[VerifiedVerdict],
    what: &str,
) -> Store {
    let store = Store::open_with(dir, disks.verdicts, disks.evidence, SEGMENT_LEN)
        .unwrap_or_else(|e| panic!("{what}: the store does not open: {e}"));
    for content in blobs {
        let blob = store
            .blob(&Digest::of(content))
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: an acknowledged blob is lost"));
        assert_eq!(&vouch_node::store::unpack_blob(&blob).unwrap(), content);
    }
    let n = store
        .check_consistency()
        .unwrap_or_else(|e| panic!("{what}: inconsistent after the cut: {e}"));
    assert!(
        n >= acked.len() as u64,
        "{what}: {n} verdicts, {} acknowledged",
        acked.len()
    );
    for v in acked {
        assert_eq!(
            store.envelope(&v.id()).unwrap().as_deref(),
            Some(v.envelope()),
            "{what}: acknowledged verdict {} lost",
            v.id()
        );
    }
    store.apply(next, 100).unwrap();
    store.put_blob(b"a log after the cut").unwrap();
    store.flush().unwrap();
    store
        .check_consistency()
        .unwrap_or_else(|e| panic!("{what}: inconsistent after writing on: {e}"));
    store
}

#[test]
fn every_acknowledged_verdict_survives_a_power_cut_at_every_write_boundary() {
    let groups = workload();
    let mut boundaries = 0;
    let mut journals_torn = 0;
    for k in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let disks = Disks::new();
        let store = disks.open(&live);
        disks.verdicts.fail_after(k);
        // What was appended (and so acknowledged as stored) before each
        // group commit, and after the last that succeeded.
        let all: Vec<VerifiedVerdict> = groups.iter().flatten().cloned().collect();
        let appended = |store: &Store| -> Vec<VerifiedVerdict> {
            all.iter()
                .filter(|v| store.contains(&v.id()).unwrap())
                .cloned()
                .collect()
        };
        let stored_blobs = |store: &Store| -> Vec<Vec<u8>> {
            (0..groups.len())
                .map(log_of)
                .filter(|c| store.blob(&Digest::of(c)).unwrap().is_some())
                .collect()
        };
        let mut acked_at: Vec<(Vec<VerifiedVerdict>, Vec<Vec<u8>>)> = Vec::new();
        let mut acked: Vec<VerifiedVerdict> = Vec::new();
        let mut blobs: Vec<Vec<u8>> = Vec::new();
        // The keyspace as it was before each group commit.
        let mut before: Vec<std::path::PathBuf> = Vec::new();
        let mut failed = None;
        for (g, group) in groups.iter().enumerate() {
            store.flush().unwrap();
            let snap = dir.path().join(format!("before-{g}"));
            copy_dir(&live, &snap);
            before.push(snap);
            acked_at.push((acked.clone(), blobs.clone()));
            let commit = store
                .put_blob(&log_of(g))
                .and_then(|_| store.apply(group, 100))
                .and_then(|_| store.flush());
            match commit {
                Ok(()) => {
                    acked = appended(&store);
                    blobs = stored_blobs(&store);
                }
                Err(e) => {
                    assert!(e.to_string().contains("power cut"), "{e}");
                    failed = Some(g);
                    break;
                }
            }
        }
        let done = failed.is_none();
        drop(store);
        let cut_in = failed.unwrap_or(groups.len());
        let mut recovered = Vec::new();
        for torn in [0usize, 5, 1 << 20] {
            // The keyspace as the writer left it.
            let here = dir.path().join(format!("left-{torn}"));
            copy_dir(&live, &here);
            recovered.push(recover(
                &here,
                disks.power_cut(torn),
                &acked,
                &blobs,
                &groups[0],
                &format!("cut at op {k}, torn {torn}"),
            ));
            // The keyspace lost the last group commit before the cut (its
            // segment records were synced, its index entries never
            // persisted).
            if cut_in > 0 {
                let g = cut_in - 1;
                let lost = dir.path().join(format!("lost-{torn}"));
                copy_dir(&before[g], &lost);
                // The same, with the keyspace's journal torn in the middle
                // of what it was writing after that.
                let tear = dir.path().join(format!("tear-{torn}"));
                let mut variants = vec![(lost, "keyspace without group")];
                if torn_journal(&before[g], &live, &tear) {
                    journals_torn += 1;
                    variants.push((tear, "journal torn after group"));
                }
                for (here, what) in variants {
                    recovered.push(recover(
                        &here,
                        disks.power_cut(torn),
                        &acked_at[g].0,
                        &acked_at[g].1,
                        &groups[g],
                        &format!("cut at op {k}, torn {torn}, {what} {g}"),
                    ));
                }
            }
        }
        close_all(recovered);
        boundaries += 1;
        if done {
            assert_eq!(acked.len(), 20);
            assert_eq!(blobs.len(), groups.len());
            assert!(
                disks.verdicts.list().unwrap().len() > 3,
                "the workload fills several segments"
            );
            break;
        }
    }
    assert!(boundaries > 10, "only {boundaries} write boundaries");
    assert!(journals_torn > 10, "only {journals_torn} torn journals");
}

/// Compressing full segments, cut at every write boundary: the store opens,
/// is consistent and holds every verdict, whichever copy survived.
#[test]
fn a_power_cut_while_compressing_loses_nothing() {
    let all: Vec<VerifiedVerdict> = workload().into_iter().flatten().collect();
    for k in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let disks = Disks::new();
        let store = disks.open(&live);
        for group in workload() {
            store.apply(&group, 100).unwrap();
        }
        store.flush().unwrap();
        let stored: Vec<VerifiedVerdict> = all
            .iter()
            .filter(|v| store.contains(&v.id()).unwrap())
            .cloned()
            .collect();
        disks.verdicts.fail_after(k);
        let finished = store.compress_segments().is_ok();
        drop(store);
        let mut recovered = Vec::new();
        for torn in [0usize, 7, 1 << 20] {
            let here = dir.path().join(format!("left-{torn}"));
            copy_dir(&live, &here);
            recovered.push(recover(
                &here,
                disks.power_cut(torn),
                &stored,
                &[],
                &workload()[0],
                &format!("compressing, cut at op {k}, torn {torn}"),
            ));
        }
        close_all(recovered);
        if finished {
            assert!(k > 3, "compression took only {k} writes");
            break;
        }
    }
}
