//! Recovery of the persistent memory store: reopen, torn tails, corruption, snapshots.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kruise_apiserver::store::{
    EventKind, MemoryStore, MemoryStoreConfig, PersistError, Store, StoreError,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn config(snapshot_every: u64) -> MemoryStoreConfig {
    MemoryStoreConfig {
        snapshot_every,
        ..MemoryStoreConfig::default()
    }
}

async fn dump(s: &MemoryStore) -> Vec<(String, Bytes, i64, i64)> {
    let list = s.list("/", None, None).await.unwrap();
    list.items
        .into_iter()
        .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
        .collect()
}

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("wal.log")).unwrap().len()
}

#[tokio::test]
async fn reopen_restores_data_and_revisions_continue() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = MemoryStore::open(dir.path()).unwrap();
        s.create("/r/a", b("1")).await.unwrap();
        s.create("/r/b", b("2")).await.unwrap();
        s.update("/r/a", b("3"), 1).await.unwrap();
        s.delete("/r/b", Some(2)).await.unwrap();
        s.create("/r/c", b("4")).await.unwrap();
        dump(&s).await
    };
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(dump(&s).await, before);
    assert_eq!(s.current_revision().await.unwrap(), 5);
    let d = s.create("/r/d", b("5")).await.unwrap();
    assert_eq!(
        d.mod_revision, 6,
        "a reopened store must not reuse revisions"
    );
    // The replayed log also serves watch resumes, including the delete with its last value.
    let mut w = s.watch("/r/", 3).await.unwrap();
    let e = w.next().await.unwrap().unwrap();
    assert_eq!(
        (
            e.kind,
            e.kv.key.as_str(),
            e.kv.value.clone(),
            e.kv.mod_revision
        ),
        (EventKind::Delete, "/r/b", b("2"), 4)
    );
}

#[tokio::test]
async fn torn_last_record_is_dropped_and_store_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        s.create("/r/a", b("1")).await.unwrap();
        s.create("/r/b", b("2")).await.unwrap();
    }
    // Cut the last record in half, as a crash during the append would.
    let len = log_len(dir.path());
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 1);
    assert!(s.get("/r/b").await.unwrap().is_none());
    let b2 = s.create("/r/b", b("again")).await.unwrap();
    assert_eq!(b2.mod_revision, 2);
    drop(s);
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(
        s.get("/r/b").await.unwrap().map(|kv| kv.value),
        Some(b("again"))
    );
}

#[tokio::test]
async fn zeroed_tail_and_partial_header_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        s.create("/r/a", b("1")).await.unwrap();
    }
    let record = log_len(dir.path());
    // A crash can leave zero-filled blocks after the last complete record.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    f.write_all(&[0; 100]).unwrap();
    drop(f);
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 1);
    assert_eq!(
        log_len(dir.path()),
        record,
        "the torn tail is truncated away"
    );
    s.create("/r/b", b("2")).await.unwrap();
    drop(s);
    // ... or only the first bytes of a frame header.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    f.set_len(record + 6).unwrap();
    drop(f);
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 1);
}

#[tokio::test]
async fn non_zero_garbage_after_the_last_record_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        s.create("/r/a", b("1")).await.unwrap();
    }
    let end = log_len(dir.path());
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    f.write_all(&[7, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9])
        .unwrap();
    drop(f);
    match MemoryStore::open(dir.path()) {
        Err(PersistError::Corrupt { offset, .. }) => assert_eq!(offset, end),
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("opened a store with garbage in its log"),
    }
}

#[tokio::test]
async fn damaged_length_in_the_middle_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        for i in 0..3 {
            s.create(&format!("/r/{i}"), b("v")).await.unwrap();
        }
    }
    let record = log_len(dir.path()) / 3;
    let mut f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    // Make the second record's length point far past the end of the file.
    f.seek(SeekFrom::Start(record + 3)).unwrap();
    f.write_all(&[0x40]).unwrap();
    drop(f);
    match MemoryStore::open(dir.path()) {
        Err(PersistError::Corrupt { offset, .. }) => assert_eq!(offset, record),
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("opened a store with a damaged log"),
    }
}

#[tokio::test]
async fn corruption_before_the_last_record_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        s.create("/r/a", b("first")).await.unwrap();
        s.create("/r/b", b("second")).await.unwrap();
    }
    let mut f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    // Flip a byte inside the first record's payload (past the 12-byte frame header).
    f.seek(SeekFrom::Start(14)).unwrap();
    f.write_all(&[0xff]).unwrap();
    drop(f);
    match MemoryStore::open(dir.path()) {
        Err(PersistError::Corrupt { offset, .. }) => assert_eq!(offset, 0),
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("opened a store with a corrupt log"),
    }
}

#[tokio::test]
async fn snapshot_truncates_log_and_recovery_replays_snapshot_plus_log() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = MemoryStore::open_with_config(dir.path(), config(10)).unwrap();
        for i in 0..25 {
            s.create(&format!("/r/{i:02}"), b(&format!("v{i}")))
                .await
                .unwrap();
        }
        s.delete("/r/03", None).await.unwrap();
        dump(&s).await
    };
    // Dropping the store waits for a snapshot still being written in the background.
    assert!(dir.path().join("snapshot").exists());
    assert!(!dir.path().join("wal.old").exists());
    // Records here are at most 45 bytes; the log was rotated at least once after 10 of the 26.
    let len = log_len(dir.path());
    assert!(
        len > 0 && len < 16 * 45,
        "log was not truncated: {len} bytes"
    );
    let s = MemoryStore::open_with_config(dir.path(), config(10)).unwrap();
    assert_eq!(dump(&s).await, before);
    assert_eq!(s.current_revision().await.unwrap(), 26);
    // Events before the snapshot are gone: resuming from there is Compacted.
    let mut w = s.watch("/r/", 1).await.unwrap();
    assert!(matches!(
        w.next().await,
        Some(Err(StoreError::Compacted { requested: 1, .. }))
    ));
    let mut w = s.watch("/r/", 25).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((e.kind, e.kv.mod_revision), (EventKind::Delete, 26));
}

#[tokio::test]
async fn a_crash_during_a_snapshot_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = MemoryStore::open(dir.path()).unwrap();
        for i in 0..5 {
            s.create(&format!("/r/{i}"), b("v")).await.unwrap();
        }
        dump(&s).await
    };
    // The state a crash leaves between rotating the log and installing the snapshot.
    std::fs::rename(dir.path().join("wal.log"), dir.path().join("wal.old")).unwrap();
    std::fs::write(dir.path().join("snapshot.tmp"), b"half a snapshot").unwrap();
    {
        let s = MemoryStore::open(dir.path()).unwrap();
        assert_eq!(dump(&s).await, before);
        assert!(!dir.path().join("wal.old").exists());
        assert!(dir.path().join("snapshot").exists());
        s.create("/r/after", b("v")).await.unwrap();
    }
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 6);
    assert_eq!(dump(&s).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Small snapshot interval: snapshots and log rotations happen while writers run.
    let s = MemoryStore::open_with_config(dir.path(), config(50)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                s.create(&format!("/r/{t:02}/{i:02}"), b("v"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected = dump(&s).await;
    assert_eq!(expected.len(), 800);
    drop(s);
    let s = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(dump(&s).await, expected);
    assert_eq!(s.current_revision().await.unwrap(), 800);
}
