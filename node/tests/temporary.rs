//! Temporary stores (tests, `vouchd sync --dry-run`) never open what a dead
//! process left behind.
//!
//! This file holds one test on purpose: it needs to be the first temporary
//! store its process makes.

mod common;

use common::*;
use vouch_node::store::Store;

/// pid_max is 32,768 on many machines, so a test process soon gets the pid
/// of one that died without removing its temporary store (killed, or a
/// store held by a thread that never ended). A name made of the pid and a
/// counter then opens that stale store, whose verdict segments lived in
/// the dead process's memory.
#[test]
fn a_stale_store_left_under_this_processs_id_is_not_opened() {
    let planted = std::env::temp_dir().join(format!("vouch-store-{}-0", std::process::id()));
    let _ = std::fs::remove_dir_all(&planted);
    let dead = tempfile::tempdir().unwrap();
    {
        let stale = Store::open(dead.path()).unwrap();
        stale.apply(&chain(&key("A"), 3), 10).unwrap();
        stale.flush().unwrap();
    }
    // What a temporary store leaves is its index (its segments were in
    // memory).
    std::fs::rename(dead.path().join("index"), &planted).unwrap();
    let opened = Store::temporary();
    let _ = std::fs::remove_dir_all(&planted);
    let store = opened.expect("a temporary store opens in a directory of its own");
    assert!(store.heads().unwrap().is_empty(), "it starts empty");
}
