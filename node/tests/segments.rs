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

/// `spec/vectors/segments.json`: a segment file of two records, their
/// pointers and the durable end, made by the writer and read back from the
/// file (`VOUCH_UPDATE_VECTORS=1` rewrites it after a deliberate change).
#[test]
fn the_segment_vectors_match() {
    use std::sync::Arc;
    use vouch_node::store::segments::{DiskIo, End, Ptr, SEGMENT_LEN, Segments};
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/segments.json");
    let records: [&[u8]; 2] = [b"first record", b"a second, longer record"];
    let dir = tempfile::tempdir().unwrap();
    let segments = Segments::open(
        Arc::new(DiskIo::new(dir.path().to_path_buf()).unwrap()),
        None,
        SEGMENT_LEN,
    )
    .unwrap();
    let ptrs = segments.append(&records).unwrap();
    let bytes = std::fs::read(dir.path().join("00000000.seg")).unwrap();
    let made = serde_json::json!({
        "description": "A segment file (00000000.seg) holding two records: 16-byte header, then per record u32 BE length, u32 BE CRC-32 (IEEE) of the bytes, the bytes. Pointers are segment u32 BE, offset u32 BE, length u32 BE; the durable end is segment u32 BE, offset u32 BE.",
        "records_hex": records.iter().map(hex::encode).collect::<Vec<_>>(),
        "segment_hex": hex::encode(&bytes),
        "pointers_hex": ptrs.iter().map(|p| hex::encode(p.encode())).collect::<Vec<_>>(),
        "end_hex": hex::encode(segments.end().encode()),
    });
    if std::env::var_os("VOUCH_UPDATE_VECTORS").is_some() {
        std::fs::write(&file, serde_json::to_string_pretty(&made).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored, made,
        "spec/vectors/segments.json differs from what the writer makes"
    );

    // Read the stored file back through the reader alone.
    let other = tempfile::tempdir().unwrap();
    let seg = hex::decode(stored["segment_hex"].as_str().unwrap()).unwrap();
    std::fs::write(other.path().join("00000000.seg"), &seg).unwrap();
    let end = End::decode(&hex::decode(stored["end_hex"].as_str().unwrap()).unwrap()).unwrap();
    let segments = Segments::open(
        Arc::new(DiskIo::new(other.path().to_path_buf()).unwrap()),
        Some(end),
        SEGMENT_LEN,
    )
    .unwrap();
    for (p, r) in stored["pointers_hex"]
        .as_array()
        .unwrap()
        .iter()
        .zip(stored["records_hex"].as_array().unwrap())
    {
        let ptr = Ptr::decode(&hex::decode(p.as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(
            hex::encode(segments.read(ptr).unwrap()),
            r.as_str().unwrap()
        );
    }
}

/// Full segments are compressed block by block; reads, check, reopening and
/// writing go on unchanged, and a damaged compressed block is an error,
/// never a panic.
#[test]
fn full_segments_are_compressed_and_read_as_before() {
    use std::sync::Arc;
    use vouch_node::store::segments::DiskIo;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let open = || {
        Store::open_with(
            &path,
            Arc::new(DiskIo::new(path.join("segments")).unwrap()),
            Arc::new(DiskIo::new(path.join("evidence")).unwrap()),
            4096,
        )
        .unwrap()
    };
    let a = chain(&key("A"), 60);
    let store = open();
    store.apply(&a, 10).unwrap();
    store.flush().unwrap();
    let before = store.segments_size().unwrap();
    let done = store.compress_segments().unwrap();
    assert!(done.segments >= 5, "{done:?}");
    assert!(done.after < done.before, "{done:?}");
    assert!(store.segments_size().unwrap() < before);
    assert_eq!(
        store.compress_segments().unwrap().segments,
        0,
        "nothing left"
    );
    let names: Vec<String> = segment_files(&path)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".seg")).count(),
        1,
        "only the segment being written stays raw: {names:?}"
    );
    for v in &a {
        assert_eq!(
            store.envelope(&v.id()).unwrap().as_deref(),
            Some(v.envelope())
        );
    }
    // Read together, out of order and repeated, from compressed blocks
    // and the raw segment: each in the place it was asked for.
    let order: Vec<u64> = (0..60).rev().chain([7, 7, 59, 0, 31]).collect();
    let ptrs: Vec<_> = order
        .iter()
        .map(|&i| {
            store
                .latest_ptr(&artifact(i), &key("A").public_key())
                .unwrap()
                .unwrap()
        })
        .collect();
    let read = store.read_many(&ptrs).unwrap();
    assert_eq!(read.len(), order.len());
    for (&i, e) in order.iter().zip(&read) {
        assert_eq!(e.as_slice(), a[i as usize].envelope(), "verdict {i}");
    }
    assert_eq!(store.check_consistency().unwrap(), 60);
    drop(store);

    let store = open();
    assert_eq!(store.check_consistency().unwrap(), 60);
    let b = chain(&key("B"), 20);
    store.apply(&b, 10).unwrap();
    store.flush().unwrap();
    store.compress_segments().unwrap();
    assert_eq!(store.check_consistency().unwrap(), 80);
    drop(store);

    // Damage the first block of a compressed segment.
    let z = segment_files(&path)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "zseg"))
        .unwrap();
    let mut bytes = std::fs::read(&z).unwrap();
    for b in &mut bytes[20..40] {
        *b ^= 0x55;
    }
    std::fs::write(&z, &bytes).unwrap();
    let store = open();
    let err = store
        .check_consistency()
        .expect_err("damage unnoticed")
        .to_string();
    assert!(err.contains("compressed segment"), "{err}");
    let failed = a
        .iter()
        .filter(|v| store.envelope(&v.id()).is_err())
        .count();
    assert!(failed > 0, "reads of the damaged block fail");
}
