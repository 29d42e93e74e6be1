//! Segment files on disk: what open cuts off, what check and reads catch.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::*;
use vouch_node::store::Store;

fn segment_files(store: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(store.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

fn filled(path: &Path, n: u64) -> Vec<vouch_attest::VerifiedVerdict> {
    let a = chain(&key("A"), n);
    let store = Store::open(path).unwrap();
    store.apply(&a, 10).unwrap();
    store.flush().unwrap();
    a
}

#[test]
fn a_torn_tail_and_an_uncommitted_segment_are_cut_off_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let a = filled(&path, 30);
    let files = segment_files(&path);
    assert_eq!(files.len(), 1);
    let committed = std::fs::metadata(&files[0]).unwrap().len();
    // Half a record written when the power went, and a segment started.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&files[0])
        .unwrap();
    f.write_all(&[0, 0, 2, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    std::fs::write(path.join("segments/00000001.seg"), b"VOUCHSEG garbage").unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), committed);
    assert_eq!(
        segment_files(&path),
        files,
        "the uncommitted segment is gone"
    );
    assert_eq!(store.check_consistency().unwrap(), 30);
    // Writing goes on where the committed records end.
    let b = chain(&key("B"), 3);
    store.apply(&b, 10).unwrap();
    store.flush().unwrap();
    assert_eq!(store.check_consistency().unwrap(), 33);
    assert_eq!(
        store.envelope(&a[29].id()).unwrap().as_deref(),
        Some(a[29].envelope())
    );
}

#[test]
fn a_damaged_record_is_reported_by_check_and_reads_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let a = filled(&path, 10);
    let file = segment_files(&path).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    // Flip one byte in the middle of the records.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();

    let store = Store::open(&path).unwrap();
    let err = store
        .check_consistency()
        .expect_err("damage unnoticed")
        .to_string();
    assert!(
        err.contains("segments") && err.contains("checksum"),
        "{err}"
    );
    let mut damaged = 0;
    for v in &a {
        match store.envelope(&v.id()) {
            Ok(Some(bytes)) => assert_eq!(bytes, v.envelope()),
            Ok(None) => panic!("verdict {} lost", v.id()),
            Err(e) => {
                assert!(e.to_string().contains("checksum"), "{e}");
                damaged += 1;
            }
        }
    }
    assert_eq!(damaged, 1, "exactly the damaged record fails");
}

#[test]
fn a_segment_shorter_than_committed_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    filled(&path, 10);
    let file = segment_files(&path).remove(0);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let err = Store::open(&path).err().expect("opened").to_string();
    assert!(err.contains("were committed"), "{err}");
    std::fs::remove_file(&file).unwrap();
    let err = Store::open(&path).err().expect("opened").to_string();
    assert!(err.contains("is missing"), "{err}");
}
