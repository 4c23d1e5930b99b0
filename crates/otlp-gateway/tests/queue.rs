//! The memory and disk queues against the `Queue` contract, plus the disk queue's
//! durability: replay, out-of-order acks, compaction, damaged files, the directory lock.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use otlp_core::{Payload, Signal};
use otlp_gateway::config::FsyncPolicy;
use otlp_gateway::pipeline::queue::{
    DiskQueue, DiskQueueConfig, Lease, MemoryQueue, PopLimits, Queue, QueueError,
};
use proptest::prelude::*;
use tempfile::TempDir;

/// Record bytes of a disk entry without tenant: body + fixed header.
const RECORD_OVERHEAD: u64 = 27;

/// Payload number `id`: the id in the first 8 bytes, then `len - 8` filler bytes; signal,
/// items and tenant vary with the id so replay can be checked field by field.
fn payload(id: u64, len: usize) -> Payload {
    let mut body = id.to_le_bytes().to_vec();
    body.extend((0..len.saturating_sub(8)).map(|i| (id as usize + i) as u8));
    let signal = Signal::ALL[(id % 3) as usize];
    let p = Payload::new(signal, Bytes::from(body), 1 + id % 5);
    match id % 4 {
        0 => p,
        1 => p.with_tenant(""),
        _ => p.with_tenant(format!("tenant-{}", id % 7)),
    }
}

fn plain(id: u64, len: usize) -> Payload {
    let mut body = id.to_le_bytes().to_vec();
    body.resize(len.max(8), 0xab);
    Payload::new(Signal::Traces, Bytes::from(body), 1)
}

fn id_of(p: &Payload) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&p.body()[..8]);
    u64::from_le_bytes(a)
}

fn ids(lease: &Lease) -> Vec<u64> {
    lease.entries.iter().map(id_of).collect()
}

fn limits(max_items: u64) -> PopLimits {
    PopLimits {
        max_items,
        max_bytes: usize::MAX,
        linger: Duration::ZERO,
    }
}

fn disk_config(dir: &Path, fsync: FsyncPolicy) -> DiskQueueConfig {
    DiskQueueConfig {
        dir: dir.to_path_buf(),
        name: "test".into(),
        max_bytes: 64 << 20,
        segment_bytes: 1 << 20,
        fsync,
        fsync_interval: Duration::from_millis(10),
        retry_after: Duration::from_secs(3),
    }
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Memory,
    Disk,
}

const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::Disk];

/// A queue of `backend` with the given byte bound (the directory lives as long as the
/// returned guard).
async fn make(backend: Backend, max_bytes: u64) -> (Box<dyn Queue>, Option<TempDir>) {
    match backend {
        Backend::Memory => (
            Box::new(MemoryQueue::new("test", max_bytes, Duration::from_secs(3))),
            None,
        ),
        Backend::Disk => {
            let dir = TempDir::new().expect("tempdir");
            let mut config = disk_config(dir.path(), FsyncPolicy::Never);
            config.max_bytes = max_bytes;
            let q = DiskQueue::open(config).await.expect("open");
            (Box::new(q), Some(dir))
        }
    }
}

async fn pop_within(q: &dyn Queue, limits: PopLimits) -> Option<Lease> {
    tokio::time::timeout(Duration::from_secs(10), q.pop(limits))
        .await
        .expect("pop did not finish in time")
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn fifo_order_and_metrics() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        for id in 0..100 {
            q.push(payload(id, 64)).await.expect("push");
        }
        let m = q.metrics();
        assert_eq!(load(&m.pushed), 100, "{backend:?}");
        assert_eq!(load(&m.depth), 100, "{backend:?}");
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let lease = pop_within(&*q, limits(7)).await.expect("lease");
            assert!(lease.entries.len() <= 7);
            seen.extend(ids(&lease));
            q.ack(lease);
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(load(&m.acked), 100);
        assert_eq!(load(&m.depth), 0);
        assert_eq!(load(&m.bytes), 0);
    }
}

#[tokio::test]
async fn nack_puts_entries_back_in_front_in_order() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        for id in 0..10 {
            q.push(plain(id, 32)).await.expect("push");
        }
        let a = pop_within(&*q, limits(3)).await.expect("a");
        let b = pop_within(&*q, limits(3)).await.expect("b");
        assert_eq!((ids(&a), ids(&b)), (vec![0, 1, 2], vec![3, 4, 5]));
        let (a_id, b_id) = (a.id, b.id);
        q.nack(a);
        q.ack(b);
        // Entries stay counted while leased; the acked ones are gone.
        assert_eq!(load(&q.metrics().depth), 7, "{backend:?}");
        let again = pop_within(&*q, limits(5)).await.expect("again");
        assert_eq!(ids(&again), vec![0, 1, 2, 6, 7], "{backend:?}");
        // Acking or nacking a finished lease changes nothing.
        q.ack(Lease {
            id: b_id,
            entries: Vec::new(),
        });
        q.nack(Lease {
            id: a_id,
            entries: Vec::new(),
        });
        assert_eq!(load(&q.metrics().acked), 3);
        q.ack(again);
        let rest = pop_within(&*q, limits(10)).await.expect("rest");
        assert_eq!(ids(&rest), vec![8, 9]);
        q.ack(rest);
        assert_eq!(load(&q.metrics().depth), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn pop_lingers_for_more_entries_until_the_deadline() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        let q: Arc<dyn Queue> = Arc::from(q);
        let lim = PopLimits {
            max_items: 3,
            max_bytes: usize::MAX,
            linger: Duration::from_millis(100),
        };
        // Fewer entries than the lease could take: it is handed out at the deadline.
        q.push(plain(0, 16)).await.expect("push");
        q.push(plain(1, 16)).await.expect("push");
        let start = tokio::time::Instant::now();
        let lease = pop_within(&*q, lim).await.expect("lease");
        assert_eq!(ids(&lease), vec![0, 1], "{backend:?}");
        assert_eq!(start.elapsed(), Duration::from_millis(100), "{backend:?}");
        q.ack(lease);
    }
}

#[tokio::test]
async fn a_lease_that_fills_up_is_handed_out_before_the_linger_deadline() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        let q: Arc<dyn Queue> = Arc::from(q);
        // A linger far longer than pop_within's 10 s bound: only a full lease returns.
        let lim = PopLimits {
            max_items: 3,
            max_bytes: usize::MAX,
            linger: Duration::from_secs(600),
        };
        q.push(plain(2, 16)).await.expect("push");
        let popper = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { pop_within(&*q, lim).await.expect("lease") })
        };
        tokio::task::yield_now().await;
        q.push(plain(3, 16)).await.expect("push");
        q.push(plain(4, 16)).await.expect("push");
        q.push(plain(5, 16)).await.expect("push");
        let lease = popper.await.expect("join");
        assert_eq!(ids(&lease), vec![2, 3, 4], "{backend:?}");
        q.ack(lease);
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_pop_puts_its_entries_back() {
    let q = MemoryQueue::new("test", 1 << 20, Duration::from_secs(1));
    q.push(plain(0, 16)).await.expect("push");
    let lim = PopLimits {
        max_items: 10,
        max_bytes: usize::MAX,
        linger: Duration::from_secs(5),
    };
    // Cancelled while lingering with entry 0 taken.
    assert!(
        tokio::time::timeout(Duration::from_millis(10), q.pop(lim))
            .await
            .is_err()
    );
    q.push(plain(1, 16)).await.expect("push");
    let lease = pop_within(&q, limits(10)).await.expect("lease");
    assert_eq!(ids(&lease), vec![0, 1]);
}

#[tokio::test]
async fn limits_bound_the_lease_but_the_first_entry_is_always_taken() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        // items: 1 + id % 5 -> ids 0..5 have 1,2,3,4,5 items.
        for id in 0..5 {
            q.push(payload(id, 100)).await.expect("push");
        }
        let lease = pop_within(&*q, limits(6)).await.expect("lease");
        assert_eq!(ids(&lease), vec![0, 1, 2], "{backend:?}: 1+2+3 items");
        assert_eq!(lease.items(), 6);
        q.ack(lease);
        // max_items below the first entry's items: it is still taken, alone.
        let lease = pop_within(&*q, limits(1)).await.expect("lease");
        assert_eq!(ids(&lease), vec![3], "{backend:?}");
        q.ack(lease);

        q.push(plain(10, 1000)).await.expect("push");
        q.push(plain(11, 10)).await.expect("push");
        q.push(plain(12, 10)).await.expect("push");
        let by_bytes = PopLimits {
            max_items: u64::MAX,
            max_bytes: 50,
            linger: Duration::ZERO,
        };
        // Entry 4 (100 bytes) is larger than max_bytes: alone.
        let lease = pop_within(&*q, by_bytes).await.expect("lease");
        assert_eq!(ids(&lease), vec![4], "{backend:?}");
        q.ack(lease);
        let lease = pop_within(&*q, by_bytes).await.expect("lease");
        assert_eq!(ids(&lease), vec![10], "{backend:?}");
        assert_eq!(lease.bytes(), 1000);
        q.ack(lease);
        let lease = pop_within(&*q, by_bytes).await.expect("lease");
        assert_eq!(ids(&lease), vec![11, 12], "{backend:?}");
        q.ack(lease);
    }
}

#[tokio::test]
async fn full_queue_refuses_with_retry_after_and_recovers_after_ack() {
    for backend in BACKENDS {
        let per_entry = match backend {
            Backend::Memory => 100,
            Backend::Disk => 100 + RECORD_OVERHEAD,
        };
        let (q, _dir) = make(backend, 3 * per_entry).await;
        for id in 0..3 {
            q.push(plain(id, 100)).await.expect("fits");
        }
        assert!(!q.has_room(100), "{backend:?}");
        match q.push(plain(3, 100)).await {
            Err(QueueError::Full {
                bytes,
                capacity,
                retry_after,
                queue,
            }) => {
                assert_eq!((bytes, capacity), (3 * per_entry, 3 * per_entry));
                assert_eq!(retry_after, Duration::from_secs(3));
                assert_eq!(queue, "test");
            }
            other => panic!("{backend:?}: expected Full, got {other:?}"),
        }
        assert_eq!(load(&q.metrics().depth), 3, "refused push stored nothing");
        let lease = pop_within(&*q, limits(1)).await.expect("lease");
        // Leased entries still count against the bound.
        assert!(q.push(plain(3, 100)).await.is_err());
        q.ack(lease);
        assert!(q.has_room(100));
        q.push(plain(3, 100)).await.expect("room after ack");
        assert_eq!(load(&q.metrics().bytes), 3 * per_entry);
    }
}

#[tokio::test]
async fn an_entry_larger_than_the_bound_fits_an_empty_queue_only() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 50).await;
        q.push(plain(0, 500)).await.expect("empty queue takes it");
        assert!(matches!(
            q.push(plain(1, 10)).await,
            Err(QueueError::Full { .. })
        ));
    }
}

#[tokio::test]
async fn close_refuses_pushes_drains_and_returns_nacked_entries() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        for id in 0..3 {
            q.push(plain(id, 16)).await.expect("push");
        }
        let out = pop_within(&*q, limits(1)).await.expect("lease");
        q.close();
        assert!(!q.has_room(1));
        assert!(
            matches!(q.push(plain(9, 16)).await, Err(QueueError::Closed(ref n)) if n == "test"),
            "{backend:?}"
        );
        let rest = pop_within(&*q, limits(10)).await.expect("drains");
        assert_eq!(ids(&rest), vec![1, 2]);
        q.ack(rest);
        // Closed and nothing ready: None, although a lease is still out.
        assert!(pop_within(&*q, limits(10)).await.is_none(), "{backend:?}");
        // The lease comes back by nack: the next pop returns it.
        q.nack(out);
        let back = pop_within(&*q, limits(10)).await.expect("nacked entry");
        assert_eq!(ids(&back), vec![0]);
        q.ack(back);
        assert!(pop_within(&*q, limits(10)).await.is_none());
        assert_eq!(load(&q.metrics().depth), 0);
    }
}

#[tokio::test]
async fn close_wakes_a_waiting_pop() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 1 << 20).await;
        let q: Arc<dyn Queue> = Arc::from(q);
        let waiter = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.pop(limits(1)).await.is_none() })
        };
        tokio::task::yield_now().await;
        q.close();
        let none = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .expect("join");
        assert!(none, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushers_and_poppers_deliver_each_entry_once() {
    for backend in BACKENDS {
        let (q, _dir) = make(backend, 64 << 20).await;
        let q: Arc<dyn Queue> = Arc::from(q);
        let total = 8 * 500;
        let pushers: Vec<_> = (0..8u64)
            .map(|t| {
                let q = Arc::clone(&q);
                tokio::spawn(async move {
                    for i in 0..500u64 {
                        q.push(plain(t * 1000 + i, 64)).await.expect("push");
                    }
                })
            })
            .collect();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let poppers: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    while let Some(lease) = pop_within(&*q, limits(50)).await {
                        seen.lock().expect("lock").extend(ids(&lease));
                        q.ack(lease);
                    }
                })
            })
            .collect();
        for p in pushers {
            p.await.expect("pusher");
        }
        // Every entry is pushed; closing lets the poppers finish after draining.
        q.close();
        for p in poppers {
            p.await.expect("popper");
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), total, "{backend:?}");
        let unique: HashSet<u64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), total, "{backend:?}: duplicates");
        assert_eq!(load(&q.metrics().acked), total as u64);
        assert_eq!(load(&q.metrics().depth), 0);
    }
}

// ---------------------------------------------------------------- disk only

#[tokio::test]
async fn disk_replays_unacked_entries_byte_for_byte() {
    let dir = TempDir::new().expect("tempdir");
    let config = disk_config(dir.path(), FsyncPolicy::Always);
    let q = DiskQueue::open(config.clone()).await.expect("open");
    for id in 0..20 {
        q.push(payload(id, 40 + id as usize * 13))
            .await
            .expect("push");
    }
    assert!(load(&q.metrics().fsyncs) > 0);
    assert!(load(&q.metrics().written_bytes) > 20 * 40);
    // Items are 1..=5 for ids 0..5: a lease of 15 items takes five entries.
    let acked = pop_within(&q, limits(15)).await.expect("lease");
    assert_eq!(ids(&acked), vec![0, 1, 2, 3, 4]);
    q.ack(acked);
    let unacked = pop_within(&q, limits(15)).await.expect("lease");
    assert_eq!(ids(&unacked), vec![5, 6, 7, 8, 9]);
    drop(q);

    let q = DiskQueue::open(config).await.expect("reopen");
    assert_eq!(load(&q.metrics().replayed), 15);
    assert_eq!(load(&q.metrics().depth), 15);
    assert_eq!(q.corrupt_records(), 0);
    let lease = pop_within(&q, limits(100)).await.expect("lease");
    assert_eq!(lease.entries.len(), 15);
    for (got, id) in lease.entries.iter().zip(5u64..) {
        let want = payload(id, 40 + id as usize * 13);
        assert_eq!(got.body(), want.body(), "body of {id}");
        assert_eq!(got.signal(), want.signal(), "signal of {id}");
        assert_eq!(got.items(), want.items(), "items of {id}");
        assert_eq!(got.header().tenant, want.header().tenant, "tenant of {id}");
    }
    // New pushes after a replay come after the replayed entries.
    q.push(payload(99, 10)).await.expect("push");
    q.ack(lease);
    let lease = pop_within(&q, limits(100)).await.expect("lease");
    assert_eq!(ids(&lease), vec![99]);
}

#[tokio::test]
async fn disk_out_of_order_acks_survive_a_restart_exactly() {
    let dir = TempDir::new().expect("tempdir");
    let config = disk_config(dir.path(), FsyncPolicy::Always);
    let q = DiskQueue::open(config.clone()).await.expect("open");
    for id in 0..10 {
        q.push(plain(id, 32)).await.expect("push");
    }
    let mut leases: BTreeMap<u64, Lease> = BTreeMap::new();
    for _ in 0..10 {
        let l = pop_within(&q, limits(1)).await.expect("lease");
        leases.insert(ids(&l)[0], l);
    }
    for id in [3, 1, 7, 0, 8] {
        q.ack(leases.remove(&id).expect("lease"));
    }
    drop(q);
    let q = DiskQueue::open(config.clone()).await.expect("reopen");
    let lease = pop_within(&q, limits(100)).await.expect("lease");
    assert_eq!(ids(&lease), vec![2, 4, 5, 6, 9]);
    // Acking the lowest moves the watermark; the rest stays exact.
    let lease2 = {
        q.nack(lease);
        let a = pop_within(&q, limits(1)).await.expect("2");
        assert_eq!(ids(&a), vec![2]);
        q.ack(a);
        q.sync().await.expect("sync");
        pop_within(&q, limits(100)).await.expect("rest")
    };
    assert_eq!(ids(&lease2), vec![4, 5, 6, 9]);
    drop(q);
    let q = DiskQueue::open(config).await.expect("reopen");
    assert_eq!(load(&q.metrics().replayed), 4);
}

/// Copy a live queue directory as a crash would leave it (no shutdown, no ack flush).
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.file_name().is_some_and(|n| n != "lock") {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

#[tokio::test]
async fn disk_crash_image_replays_at_least_every_unacked_entry() {
    let dir = TempDir::new().expect("tempdir");
    let q = DiskQueue::open(disk_config(&dir.path().join("q"), FsyncPolicy::Always))
        .await
        .expect("open");
    for id in 0..30 {
        q.push(plain(id, 50)).await.expect("push");
    }
    let first = pop_within(&q, limits(10)).await.expect("lease");
    q.ack(first);
    q.sync().await.expect("sync");
    let second = pop_within(&q, limits(10)).await.expect("lease");
    q.ack(second); // maybe not on disk yet: may come back, at least once
    crash_image(&dir.path().join("q"), &dir.path().join("crash"));
    let r = DiskQueue::open(disk_config(&dir.path().join("crash"), FsyncPolicy::Always))
        .await
        .expect("open image");
    let back = ids(&pop_within(&r, limits(100)).await.expect("lease"));
    assert!(
        back.iter().all(|id| *id >= 10),
        "synced acks never come back"
    );
    assert!(back.ends_with(&(20..30).collect::<Vec<_>>()), "{back:?}");
}

#[tokio::test]
async fn disk_rotates_segments_and_deletes_acknowledged_ones() {
    let dir = TempDir::new().expect("tempdir");
    let mut config = disk_config(dir.path(), FsyncPolicy::Interval);
    config.segment_bytes = 1024;
    let q = DiskQueue::open(config.clone()).await.expect("open");
    for id in 0..50 {
        q.push(plain(id, 200)).await.expect("push");
    }
    let files = seg_files(dir.path());
    assert!(
        files.len() >= 12,
        "one segment per ~4 records: {}",
        files.len()
    );
    for f in &files {
        let len = std::fs::metadata(f).expect("meta").len();
        assert!(len <= 1024, "{} is {len} bytes", f.display());
    }
    // Ack the first 20: their segments go, the others stay.
    let lease = pop_within(&q, limits(20)).await.expect("lease");
    q.ack(lease);
    q.sync().await.expect("sync");
    let left = seg_files(dir.path());
    assert!(
        left.len() < files.len() && left.len() >= 7,
        "{}",
        left.len()
    );
    let lease = pop_within(&q, limits(100)).await.expect("lease");
    assert_eq!(lease.entries.len(), 30);
    q.ack(lease);
    q.sync().await.expect("sync");
    assert!(
        seg_files(dir.path()).len() <= 1,
        "only the active segment may stay"
    );
    drop(q);
    let q = DiskQueue::open(config).await.expect("reopen");
    assert_eq!(load(&q.metrics().replayed), 0);
    assert!(seg_files(dir.path()).is_empty());
}

async fn fill_and_close(dir: &Path, n: u64) -> DiskQueueConfig {
    let config = disk_config(dir, FsyncPolicy::Always);
    let q = DiskQueue::open(config.clone()).await.expect("open");
    for id in 0..n {
        q.push(payload(id, 60)).await.expect("push");
    }
    drop(q);
    config
}

async fn replayed_ids(config: &DiskQueueConfig) -> (Vec<u64>, u64) {
    let q = DiskQueue::open(config.clone()).await.expect("open");
    let depth = load(&q.metrics().depth);
    let ids = if depth == 0 {
        Vec::new()
    } else {
        let lease = pop_within(&q, limits(u64::MAX)).await.expect("lease");
        for p in &lease.entries {
            let id = id_of(p);
            assert_eq!(p.body(), payload(id, 60).body(), "record {id} intact");
            assert_eq!(p.header().tenant, payload(id, 60).header().tenant);
        }
        ids(&lease)
    };
    (ids, q.corrupt_records())
}

#[tokio::test]
async fn disk_torn_tail_is_cut_and_counted() {
    let dir = TempDir::new().expect("tempdir");
    let config = fill_and_close(dir.path(), 10).await;
    let seg = seg_files(dir.path()).pop().expect("segment");
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(len - 20).expect("truncate mid-record");
    drop(f);
    let (back, corrupt) = replayed_ids(&config).await;
    assert_eq!(back, (0..9).collect::<Vec<_>>());
    assert_eq!(corrupt, 1);
    // The tail was cut: a second open finds nothing damaged.
    let (back, corrupt) = replayed_ids(&config).await;
    assert_eq!((back.len(), corrupt), (9, 0));
}

#[tokio::test]
async fn disk_flipped_byte_is_counted_and_earlier_records_survive() {
    let dir = TempDir::new().expect("tempdir");
    let config = fill_and_close(dir.path(), 10).await;
    let seg = seg_files(dir.path()).pop().expect("segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    // Record size here: 8 + 19 + tenant + 60; flip inside the 6th record's body.
    let mut off = 16;
    for id in 0..5 {
        off += 87
            + payload(id, 60)
                .header()
                .tenant
                .as_deref()
                .map_or(0, str::len);
    }
    bytes[off + 40] ^= 0x01;
    std::fs::write(&seg, &bytes).expect("write");
    let (back, corrupt) = replayed_ids(&config).await;
    assert_eq!(back, (0..5).collect::<Vec<_>>());
    assert_eq!(corrupt, 1);
}

#[tokio::test]
async fn disk_record_damaged_after_open_is_dropped_at_pop_and_counted() {
    let dir = TempDir::new().expect("tempdir");
    let config = fill_and_close(dir.path(), 4).await;
    // Replayed entries are read back from the file at pop time.
    let q = DiskQueue::open(config).await.expect("open");
    let dynq: &dyn Queue = &q;
    assert_eq!(dynq.corrupt_records(), 0);
    let seg = seg_files(dir.path()).pop().expect("segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    // Inside the body of record 1 (record 0 has no tenant: 87 bytes).
    bytes[16 + 87 + 50] ^= 0xff;
    std::fs::write(&seg, &bytes).expect("write");
    let lease = pop_within(dynq, limits(u64::MAX)).await.expect("lease");
    assert_eq!(ids(&lease), vec![0, 2, 3]);
    assert_eq!(dynq.corrupt_records(), 1);
    assert_eq!(load(&q.metrics().depth), 3, "the damaged entry is gone");
    q.ack(lease);
    assert_eq!(load(&q.metrics().depth), 0);
}

#[tokio::test]
async fn disk_any_single_flipped_byte_never_panics_nor_returns_altered_data() {
    let dir = TempDir::new().expect("tempdir");
    let config = fill_and_close(&dir.path().join("orig"), 3).await;
    let seg = seg_files(&config.dir).pop().expect("segment");
    let orig = std::fs::read(&seg).expect("read");
    for i in 0..orig.len() {
        let case = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case).expect("mkdir");
        let mut bytes = orig.clone();
        bytes[i] ^= 0x40;
        std::fs::write(case.join(seg.file_name().expect("name")), &bytes).expect("write");
        let mut c = config.clone();
        c.dir = case.clone();
        // replayed_ids checks every returned body is the original one.
        let (back, corrupt) = replayed_ids(&c).await;
        assert!(
            back.len() < 3 && corrupt == 1,
            "byte {i}: {back:?} {corrupt}"
        );
        assert_eq!(back, (0..back.len() as u64).collect::<Vec<_>>());
        std::fs::remove_dir_all(&case).expect("cleanup");
    }
}

#[tokio::test]
async fn disk_garbage_files_are_set_aside_and_the_queue_works() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(
        dir.path().join("00000000000000000000.seg"),
        b"garbage, not a segment at all",
    )
    .expect("write");
    std::fs::write(dir.path().join("ack"), b"junk").expect("write");
    std::fs::write(dir.path().join("README"), b"operator notes").expect("write");
    let config = disk_config(dir.path(), FsyncPolicy::Always);
    let q = DiskQueue::open(config.clone())
        .await
        .expect("open despite garbage");
    assert_eq!(q.corrupt_records(), 1);
    assert!(dir.path().join("00000000000000000000.seg.corrupt").exists());
    q.push(plain(1, 10)).await.expect("push");
    let lease = pop_within(&q, limits(1)).await.expect("lease");
    assert_eq!(ids(&lease), vec![1]);
    drop(q);
    let q = DiskQueue::open(config).await.expect("reopen");
    assert_eq!((load(&q.metrics().replayed), q.corrupt_records()), (1, 0));
    assert!(
        dir.path().join("README").exists(),
        "unrelated files are left alone"
    );
}

#[tokio::test]
async fn disk_directory_lock_keeps_a_second_gateway_out() {
    let dir = TempDir::new().expect("tempdir");
    let config = disk_config(dir.path(), FsyncPolicy::Never);
    let q = DiskQueue::open(config.clone()).await.expect("open");
    let err = DiskQueue::open(config.clone())
        .await
        .expect_err("second open");
    match err {
        QueueError::Io { message, .. } => assert!(message.contains("in use"), "{message}"),
        other => panic!("expected Io, got {other:?}"),
    }
    drop(q);
    DiskQueue::open(config)
        .await
        .expect("open after the first closed");
}

#[tokio::test]
async fn disk_rejects_bad_config_and_oversized_tenant() {
    let dir = TempDir::new().expect("tempdir");
    let mut config = disk_config(dir.path(), FsyncPolicy::Never);
    config.segment_bytes = 0;
    let err = DiskQueue::open(config.clone())
        .await
        .expect_err("bad config");
    assert!(err.to_string().contains("segment_bytes"), "{err}");

    config.segment_bytes = 1 << 20;
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    config.dir = file.join("q");
    let err = DiskQueue::open(config.clone())
        .await
        .expect_err("dir under a file");
    assert!(
        err.to_string().contains("cannot create queue directory"),
        "{err}"
    );

    config.dir = dir.path().join("q");
    let q = DiskQueue::open(config).await.expect("open");
    let huge = plain(1, 8).with_tenant("t".repeat(70_000));
    let err = q.push(huge).await.expect_err("tenant too long");
    assert!(matches!(err, QueueError::Io { .. }), "{err:?}");
    assert_eq!(load(&q.metrics().depth), 0, "nothing stored");
    q.push(plain(2, 8)).await.expect("the queue still works");
}

#[tokio::test]
async fn disk_every_fsync_policy_stores_and_replays() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval,
        FsyncPolicy::Never,
    ] {
        let dir = TempDir::new().expect("tempdir");
        let config = disk_config(dir.path(), policy);
        let q = DiskQueue::open(config.clone()).await.expect("open");
        for id in 0..20 {
            q.push(plain(id, 100)).await.expect("push");
        }
        let fsyncs = load(&q.metrics().fsyncs);
        match policy {
            FsyncPolicy::Always => assert!(fsyncs >= 2, "{policy:?}: {fsyncs}"),
            FsyncPolicy::Never => assert_eq!(fsyncs, 0, "{policy:?}"),
            FsyncPolicy::Interval => {
                // The writer's own timer (10 ms) must fsync without being asked.
                let mut tries = 0;
                while load(&q.metrics().fsyncs) <= 2 && tries < 500 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tries += 1;
                }
                assert!(load(&q.metrics().fsyncs) > 2, "interval fsync happened");
            }
        }
        let before = load(&q.metrics().fsyncs);
        q.sync().await.expect("sync");
        assert!(
            load(&q.metrics().fsyncs) > before,
            "{policy:?}: sync forces fsync"
        );
        drop(q);
        let q = DiskQueue::open(config).await.expect("reopen");
        assert_eq!(load(&q.metrics().replayed), 20, "{policy:?}");
    }
}

// ---------------------------------------------------------------- model test

#[derive(Debug, Clone)]
enum Op {
    Push(u16),
    Pop(u8),
    Ack(usize),
    Nack(usize),
    Sync,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u16..300).prop_map(Op::Push),
        3 => (1u8..6).prop_map(Op::Pop),
        2 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::Nack),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
    ]
}

/// Runs `ops` against a queue and a model of it. The model: `unacked` (pushed, not
/// acked), `ready` (the order the next pops must return). Checked: pops return exactly
/// the model's next ready entries, byte-identical; after a reopen exactly the unacked
/// entries come back, in push order; nothing acked ever comes back.
async fn run_model(ops: Vec<Op>, disk: bool) -> Result<(), TestCaseError> {
    let dir = TempDir::new().expect("tempdir");
    let mut config = disk_config(dir.path(), FsyncPolicy::Never);
    config.segment_bytes = 700;
    let open = |config: DiskQueueConfig| async move {
        if disk {
            Box::new(DiskQueue::open(config).await.expect("open")) as Box<dyn Queue>
        } else {
            Box::new(MemoryQueue::new("test", 64 << 20, Duration::from_secs(1)))
        }
    };
    let mut q = open(config.clone()).await;
    let mut next_id = 0u64;
    let mut unacked: BTreeMap<u64, ()> = BTreeMap::new();
    let mut ready: VecDeque<u64> = VecDeque::new();
    let mut leases: Vec<Lease> = Vec::new();
    let mut sizes: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for op in ops {
        match op {
            Op::Push(size) => {
                let id = next_id;
                next_id += 1;
                sizes.insert(id, 8 + usize::from(size));
                q.push(payload(id, sizes[&id])).await.expect("push");
                unacked.insert(id, ());
                ready.push_back(id);
            }
            Op::Pop(n) => {
                if ready.is_empty() {
                    continue;
                }
                let lease = pop_within(&*q, limits(u64::from(n) * 5))
                    .await
                    .expect("lease");
                for p in &lease.entries {
                    let id = id_of(p);
                    prop_assert_eq!(ready.pop_front(), Some(id), "FIFO");
                    let want = payload(id, sizes[&id]);
                    prop_assert_eq!(p.body(), want.body());
                    prop_assert_eq!(&p.header().tenant, &want.header().tenant);
                }
                leases.push(lease);
            }
            Op::Ack(i) if !leases.is_empty() => {
                let lease = leases.remove(i % leases.len());
                for p in &lease.entries {
                    unacked.remove(&id_of(p));
                }
                q.ack(lease);
            }
            Op::Nack(i) if !leases.is_empty() => {
                let lease = leases.remove(i % leases.len());
                for p in lease.entries.iter().rev() {
                    ready.push_front(id_of(p));
                }
                q.nack(lease);
            }
            Op::Ack(_) | Op::Nack(_) => {}
            Op::Sync => q.sync().await.expect("sync"),
            Op::Reopen if disk => {
                leases.clear();
                drop(q);
                q = open(config.clone()).await;
                prop_assert_eq!(load(&q.metrics().replayed), unacked.len() as u64);
                ready = unacked.keys().copied().collect();
            }
            Op::Reopen => {}
        }
        prop_assert_eq!(load(&q.metrics().depth), unacked.len() as u64);
    }
    // Drain: exactly the ready entries, once each.
    if !ready.is_empty() {
        let lease = pop_within(&*q, limits(u64::MAX)).await.expect("lease");
        prop_assert_eq!(ids(&lease), ready.iter().copied().collect::<Vec<_>>());
        q.ack(lease);
    }
    for lease in leases.drain(..) {
        q.ack(lease);
    }
    prop_assert_eq!(load(&q.metrics().depth), 0);
    prop_assert_eq!(load(&q.metrics().bytes), 0);
    if disk {
        drop(q);
        let q = open(config).await;
        prop_assert_eq!(
            load(&q.metrics().replayed),
            0,
            "acked entries never come back"
        );
    }
    Ok(())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn disk_queue_never_loses_nor_resurrects(ops in proptest::collection::vec(op(), 1..60)) {
        block_on(run_model(ops, true))?;
    }

    #[test]
    fn memory_queue_follows_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        block_on(run_model(ops, false))?;
    }
}
