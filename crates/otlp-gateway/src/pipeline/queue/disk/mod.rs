//! The disk queue: append-only segment files with checksummed records, group-committed
//! by one writer thread, acknowledged out of order, replayed after a restart.
//!
//! Layout of a queue directory (one per route):
//!
//! ```text
//! <dir>/lock                      held (flock) while a gateway has the queue open
//! <dir>/ack                       watermark + acknowledged ranges above it
//! <dir>/00000000000000000000.seg  segments, named by their first seq
//! <dir>/00000000000000004711.seg
//! ```
//!
//! Record format and ack file format: see the `format` module. Guarantees:
//!
//! - [`Queue::push`] returns `Ok` once the record is written (`fsync = "never"` /
//!   `"interval"`) or written and fsynced (`"always"`; pushes that arrive together share
//!   one `fdatasync`). A failed write is cut back off the segment and reported as
//!   [`QueueError::Io`] to every pusher of that group; nothing is half-acknowledged.
//! - Acks may come in any order (several workers). The ack file holds the lowest
//!   unacknowledged seq (the watermark) and the acknowledged ranges above it; it is
//!   rewritten at most every 100 ms, when a segment is deleted, on [`Queue::sync`] and on
//!   drop. After a clean shutdown (drop, or `sync`) reopening returns exactly the
//!   unacknowledged entries; after a crash, entries acknowledged in the last ~100 ms may
//!   come back as well (at least once delivery, never loss).
//! - A segment is deleted once every record in it is acknowledged and it is no longer
//!   appended to.
//! - At open every record's CRC-32 is checked. A damaged spot (torn tail after a crash,
//!   flipped bits, garbage) is counted in [`Queue::corrupt_records`] and the segment
//!   is cut there (the records after it cannot be framed); a file with a bad header is
//!   renamed to `*.seg.corrupt`. Nothing panics on bad input.
//! - The byte bound counts unacknowledged record bytes (payload + 27 bytes + tenant),
//!   also shown as the queue's `bytes` gauge.
//! - Replayed payloads get their signal, item count and tenant back byte for byte; their
//!   `received_at` is the time of the replay (a monotonic clock does not survive restarts).
//!
//! Why our own instead of a crate (checked when this was written): `yaque` is a
//! single-producer single-consumer queue whose receiver commits in order, with no
//! out-of-order acks, no byte bound and no group fsync; `queue-file` (a port of Tape) is
//! one circular file that removes from the head only, fsyncs every operation and has no
//! record checksums; `sled` / `fjall` are key-value stores (sled is unmaintained beta)
//! whose write amplification and compaction buy nothing for a FIFO of blobs. The segment
//! log here (~1,600 lines with the format's unit tests) matches the contract of
//! [`Queue`] exactly; see `docs/adr/0008-disk-queue.md`.

mod format;
mod replay;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use otlp_core::{Payload, PayloadHeader};
use tokio::sync::oneshot;

use super::memory::{LeaseCore, LeaseEntry, reserve};
use super::{Lease, PopLimits, Queue, QueueError};
use crate::config::FsyncPolicy;
use crate::metrics::QueueMetrics;
use format::{MAX_TENANT_LEN, Parsed, SEGMENT_HEADER_LEN, body_of, parse_record, record_len};
use writer::{Command, PushRequest, Writer};

/// Most payload bytes kept in memory so a pop does not read them back from disk.
const MAX_CACHE_BYTES: u64 = 64 << 20;

/// How to open a [`DiskQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskQueueConfig {
    /// The queue's own directory (created if missing), e.g. `data_dir/queue/<route>`.
    pub dir: PathBuf,
    /// The route's name (metrics label, error messages).
    pub name: String,
    /// Most unacknowledged record bytes; beyond it pushes get [`QueueError::Full`].
    pub max_bytes: u64,
    /// A new segment file is started once the current one would pass this size.
    pub segment_bytes: u64,
    /// When appended data is forced to disk.
    pub fsync: FsyncPolicy,
    /// For [`FsyncPolicy::Interval`]: how often.
    pub fsync_interval: Duration,
    /// Retry delay suggested to refused clients.
    pub retry_after: Duration,
}

/// A segment that still holds unacknowledged records (or is being appended to).
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) file: Arc<File>,
    /// Unacknowledged records in it.
    pub(crate) live: u64,
}

/// One unacknowledged record as the ready list and leases hold it.
#[derive(Debug, Clone)]
pub(crate) struct DiskEntry {
    pub(crate) seq: u64,
    pub(crate) segment: u64,
    /// Offset of the record in its segment.
    pub(crate) offset: u64,
    pub(crate) record_len: u32,
    pub(crate) body_len: usize,
    pub(crate) header: PayloadHeader,
    /// The body, when it is still in memory.
    pub(crate) cached: Option<Bytes>,
}

impl LeaseEntry for DiskEntry {
    fn entry_items(&self) -> u64 {
        self.header.items
    }
    fn entry_bytes(&self) -> usize {
        self.body_len
    }
}

#[derive(Debug)]
pub(crate) struct DiskState {
    pub(crate) unacked: BTreeSet<u64>,
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// The segment being appended to (never deleted while active).
    pub(crate) active: Option<u64>,
    /// Fully acknowledged segments to delete (by the writer).
    pub(crate) to_delete: Vec<u64>,
    pub(crate) ack_dirty: bool,
    /// Every seq below is written (or failed): unacked, or acknowledged.
    pub(crate) next_seq: u64,
}

/// State shared by the queue handle and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) metrics: Arc<QueueMetrics>,
    pub(crate) core: LeaseCore<DiskEntry>,
    state: Mutex<DiskState>,
    /// Unacknowledged record bytes plus reservations of pushes in flight.
    held: AtomicU64,
    cache_bytes: AtomicU64,
    cache_limit: u64,
    corrupt: AtomicU64,
    pub(crate) wake_pending: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn release_reservation(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether a body of `len` bytes may stay in memory.
    pub(crate) fn try_cache(&self, len: u64) -> bool {
        self.cache_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c + len <= self.cache_limit).then_some(c + len)
            })
            .is_ok()
    }
}

/// The durable queue (see the module docs).
///
/// ```
/// use std::time::Duration;
/// use otlp_core::{Payload, Signal};
/// use otlp_gateway::config::FsyncPolicy;
/// use otlp_gateway::pipeline::queue::{DiskQueue, DiskQueueConfig, PopLimits, Queue};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let config = DiskQueueConfig {
///     dir: dir.path().join("upstream"),
///     name: "upstream".into(),
///     max_bytes: 1 << 30,
///     segment_bytes: 32 << 20,
///     fsync: FsyncPolicy::Always,
///     fsync_interval: Duration::from_secs(1),
///     retry_after: Duration::from_secs(1),
/// };
/// let queue = DiskQueue::open(config.clone()).await.unwrap();
/// queue.push(Payload::new(Signal::Traces, bytes::Bytes::from_static(b"spans"), 1)).await.unwrap();
/// drop(queue); // a restart: the entry was never acknowledged
///
/// let queue = DiskQueue::open(config).await.unwrap();
/// let limits = PopLimits { max_items: 100, max_bytes: 1 << 20, linger: Duration::ZERO };
/// let lease = queue.pop(limits).await.unwrap();
/// assert_eq!(lease.entries[0].body().as_ref(), b"spans");
/// queue.ack(lease);
/// # });
/// ```
#[derive(Debug)]
pub struct DiskQueue {
    shared: Arc<Shared>,
    tx: Sender<Command>,
    writer: Option<JoinHandle<()>>,
    max_bytes: u64,
    retry_after: Duration,
    dir: PathBuf,
    // Held for the queue's lifetime: the flock keeps other processes out of `dir`.
    _lock: File,
}

impl DiskQueue {
    /// Open (creating if needed) the queue in `config.dir`, replaying what is there.
    /// Runs the blocking replay on the blocking thread pool.
    ///
    /// # Errors
    ///
    /// [`QueueError::Io`] when the directory cannot be created or read, when another
    /// process holds it, or when `config` is unusable.
    pub async fn open(config: DiskQueueConfig) -> Result<DiskQueue, QueueError> {
        let name = config.name.clone();
        tokio::task::spawn_blocking(move || DiskQueue::open_blocking(config))
            .await
            .map_err(|e| QueueError::Io {
                queue: name,
                message: format!("opening the queue failed: {e}"),
            })?
    }

    /// [`DiskQueue::open`] on the calling thread (blocks while replaying).
    ///
    /// # Errors
    ///
    /// As [`DiskQueue::open`].
    pub fn open_blocking(config: DiskQueueConfig) -> Result<DiskQueue, QueueError> {
        let io = |what: String, e: std::io::Error| QueueError::Io {
            queue: config.name.clone(),
            message: format!("{what}: {e}"),
        };
        let dir = &config.dir;
        if config.segment_bytes <= SEGMENT_HEADER_LEN as u64 || config.max_bytes == 0 {
            return Err(QueueError::Io {
                queue: config.name.clone(),
                message: format!(
                    "segment_bytes ({}) must be above {SEGMENT_HEADER_LEN} and max_bytes ({}) above 0",
                    config.segment_bytes, config.max_bytes
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            io(
                format!("cannot create queue directory {}", dir.display()),
                e,
            )
        })?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(format!("cannot open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(QueueError::Io {
                    queue: config.name.clone(),
                    message: format!(
                        "queue directory {} is in use by another gateway ({} is locked); give each gateway its own data_dir",
                        dir.display(),
                        lock_path.display()
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(format!("cannot lock {}", lock_path.display()), e));
            }
        }
        // For operators: who holds it. Best effort.
        let _ = lock
            .set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()));

        let replayed = replay::replay(dir).map_err(|e| {
            io(
                format!("cannot replay queue directory {}", dir.display()),
                e,
            )
        })?;
        let metrics = Arc::new(QueueMetrics::new(
            config.name.clone(),
            "disk",
            config.max_bytes,
        ));
        let n = replayed.entries.len() as u64;
        metrics.replayed.store(n, Ordering::Relaxed);
        metrics.depth.store(n, Ordering::Relaxed);
        metrics.bytes.store(replayed.bytes, Ordering::Relaxed);
        if replayed.corrupt > 0 {
            tracing::error!(queue = %config.name, records = replayed.corrupt, "damaged queue records dropped at replay");
        }
        if n > 0 {
            tracing::info!(queue = %config.name, entries = n, bytes = replayed.bytes, "replaying queued entries");
        }
        let unacked = replayed.entries.iter().map(|e| e.seq).collect();
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            metrics,
            core: LeaseCore::new(),
            state: Mutex::new(DiskState {
                unacked,
                segments: replayed.segments,
                active: None,
                to_delete: Vec::new(),
                ack_dirty: true,
                next_seq: replayed.next_seq,
            }),
            held: AtomicU64::new(replayed.bytes),
            cache_bytes: AtomicU64::new(0),
            cache_limit: (config.max_bytes / 4).min(MAX_CACHE_BYTES),
            corrupt: AtomicU64::new(replayed.corrupt),
            wake_pending: AtomicBool::new(false),
        });
        shared.core.push_back(replayed.entries);
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer::new(
            Arc::clone(&shared),
            dir.clone(),
            rx,
            config.fsync,
            config.fsync_interval,
            config.segment_bytes,
            replayed.next_seq,
        );
        let handle = std::thread::Builder::new()
            .name(format!("queue-{}", config.name))
            .spawn(move || writer.run())
            .map_err(|e| io("cannot start the queue writer thread".into(), e))?;
        Ok(DiskQueue {
            shared,
            tx,
            writer: Some(handle),
            max_bytes: config.max_bytes,
            retry_after: config.retry_after,
            dir: config.dir,
            _lock: lock,
        })
    }

    /// The queue's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn closed(&self) -> QueueError {
        QueueError::Closed(self.shared.name.clone())
    }

    fn wake_writer(&self) {
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Command::Wake);
        }
    }

    /// Remove entries for good (acknowledged, or unreadable).
    fn finish(&self, entries: &[DiskEntry]) {
        let (mut n, mut bytes, mut cached) = (0u64, 0u64, 0u64);
        {
            let mut st = self.shared.lock();
            let active = st.active;
            for e in entries {
                if !st.unacked.remove(&e.seq) {
                    continue;
                }
                n += 1;
                bytes += u64::from(e.record_len);
                if e.cached.is_some() {
                    cached += e.body_len as u64;
                }
                let emptied = st.segments.get_mut(&e.segment).is_some_and(|s| {
                    s.live = s.live.saturating_sub(1);
                    s.live == 0
                });
                if emptied && active != Some(e.segment) {
                    st.segments.remove(&e.segment);
                    st.to_delete.push(e.segment);
                }
            }
            st.ack_dirty = true;
        }
        self.shared.held.fetch_sub(bytes, Ordering::AcqRel);
        self.shared.cache_bytes.fetch_sub(cached, Ordering::AcqRel);
        let m = &self.shared.metrics;
        m.depth.fetch_sub(n, Ordering::Relaxed);
        m.bytes.fetch_sub(bytes, Ordering::Relaxed);
        m.acked.fetch_add(n, Ordering::Relaxed);
        self.wake_writer();
    }

    async fn push_payload(&self, payload: Payload) -> Result<(), QueueError> {
        if self.shared.core.is_closed() {
            return Err(self.closed());
        }
        let (header, body) = payload.into_parts();
        let tenant_len = header.tenant.as_deref().map_or(0, str::len);
        let len = record_len(header.tenant.as_deref(), body.len());
        if tenant_len > MAX_TENANT_LEN || len > u64::from(u32::MAX) {
            return Err(QueueError::Io {
                queue: self.shared.name.clone(),
                message: format!(
                    "entry too large for a queue record (tenant {tenant_len} bytes, body {} bytes)",
                    body.len()
                ),
            });
        }
        if let Err(held) = reserve(&self.shared.held, len, self.max_bytes) {
            return Err(QueueError::Full {
                queue: self.shared.name.clone(),
                bytes: held,
                capacity: self.max_bytes,
                retry_after: self.retry_after,
            });
        }
        let mut body_crc = crc32fast::Hasher::new();
        body_crc.update(&body);
        let (reply, answer) = oneshot::channel();
        let request = PushRequest {
            signal: header.signal,
            items: header.items,
            tenant: header.tenant,
            received_at: header.received_at,
            body,
            body_crc,
            record_len: len,
            reply,
        };
        if self.tx.send(Command::Push(request)).is_err() {
            self.shared.release_reservation(len);
            return Err(self.closed());
        }
        // From here the writer owns the reservation (it releases it on failure).
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(QueueError::Io {
                queue: self.shared.name.clone(),
                message: "the queue writer stopped".into(),
            }),
        }
    }

    async fn pop_lease(&self, limits: PopLimits) -> Option<Lease> {
        loop {
            let (id, entries) = self.shared.core.pop(limits).await?;
            let mut guard = NackOnDrop {
                core: &self.shared.core,
                id,
                armed: true,
            };
            let mut bodies: Vec<Option<Bytes>> = entries.iter().map(|e| e.cached.clone()).collect();
            let reads: Vec<_> = {
                let st = self.shared.lock();
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.cached.is_none())
                    .map(|(i, e)| {
                        let file = st.segments.get(&e.segment).map(|s| Arc::clone(&s.file));
                        (i, e.seq, file, e.offset, e.record_len)
                    })
                    .collect()
            };
            let mut bad = Vec::new();
            if !reads.is_empty() {
                let read = tokio::task::spawn_blocking(move || {
                    reads
                        .into_iter()
                        .map(|(i, seq, file, offset, len)| {
                            (i, seq, read_body(file, offset, len, seq))
                        })
                        .collect::<Vec<_>>()
                })
                .await;
                let mut transient = None;
                match read {
                    Ok(results) => {
                        for (i, seq, result) in results {
                            match result {
                                Ok(body) => bodies[i] = Some(body),
                                Err(ReadFailure::Corrupt(reason)) => {
                                    tracing::error!(queue = %self.shared.name, seq, reason, "queue record unreadable; dropped");
                                    bad.push(seq);
                                }
                                Err(ReadFailure::Io(reason)) => transient = Some(reason),
                            }
                        }
                    }
                    Err(e) => transient = Some(e.to_string()),
                }
                if let Some(reason) = transient {
                    // An I/O error is not corruption: the records may read fine later.
                    // The guard puts the whole lease back; try again after a pause.
                    tracing::error!(queue = %self.shared.name, reason, "reading queue records failed; will retry");
                    drop(guard);
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            }
            guard.armed = false;
            if !bad.is_empty() {
                let gone = self.shared.core.split_lease(id, |e| bad.contains(&e.seq));
                self.shared
                    .corrupt
                    .fetch_add(gone.len() as u64, Ordering::Relaxed);
                self.finish(&gone);
            }
            let payloads: Vec<Payload> = entries
                .into_iter()
                .zip(bodies)
                .filter_map(|(e, body)| body.map(|b| Payload::from_parts(e.header, b)))
                .collect();
            if !payloads.is_empty() {
                return Some(Lease {
                    id,
                    entries: payloads,
                });
            }
        }
    }
}

/// Why a record could not be read back.
enum ReadFailure {
    /// The bytes are wrong (checksum, framing, a record that is not the indexed one):
    /// reading again cannot help.
    Corrupt(String),
    /// The read failed (EIO, ENOMEM...): the record may read fine later.
    Io(String),
}

/// Read one record back and return its body, checking checksum and seq.
fn read_body(
    file: Option<Arc<File>>,
    offset: u64,
    len: u32,
    seq: u64,
) -> Result<Bytes, ReadFailure> {
    let file = file.ok_or_else(|| ReadFailure::Corrupt("segment file is gone".into()))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                ReadFailure::Corrupt(format!("record cut short: {e}"))
            }
            _ => ReadFailure::Io(e.to_string()),
        })?;
    match parse_record(&buf) {
        Parsed::Record(v) if v.seq == seq && v.record_len == buf.len() => {
            Ok(body_of(Bytes::from(buf), &v))
        }
        Parsed::Record(_) => Err(ReadFailure::Corrupt(
            "record does not match the index".into(),
        )),
        Parsed::Bad(reason) => Err(ReadFailure::Corrupt(reason.into())),
        Parsed::End => Err(ReadFailure::Corrupt("record missing".into())),
    }
}

/// Puts a lease back if a pop is cancelled while its bodies are read.
struct NackOnDrop<'a> {
    core: &'a LeaseCore<DiskEntry>,
    id: u64,
    armed: bool,
}

impl Drop for NackOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.core.nack(self.id);
        }
    }
}

impl Queue for DiskQueue {
    fn push(&self, payload: Payload) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(self.push_payload(payload))
    }

    fn has_room(&self, bytes: usize) -> bool {
        let held = self.shared.held.load(Ordering::Acquire);
        let len = record_len(None, bytes);
        !self.shared.core.is_closed() && (held == 0 || held.saturating_add(len) <= self.max_bytes)
    }

    fn pop(&self, limits: PopLimits) -> BoxFuture<'_, Option<Lease>> {
        Box::pin(self.pop_lease(limits))
    }

    fn ack(&self, lease: Lease) {
        match self.shared.core.take(lease.id) {
            Some(entries) => self.finish(&entries),
            None => {
                tracing::debug!(queue = %self.shared.name, lease = lease.id, "ack of an unknown lease ignored")
            }
        }
    }

    fn nack(&self, lease: Lease) {
        if !self.shared.core.nack(lease.id) {
            tracing::debug!(queue = %self.shared.name, lease = lease.id, "nack of an unknown lease ignored");
        }
    }

    fn close(&self) {
        self.shared.core.close();
        self.shared.lock().ack_dirty = true;
        self.wake_writer();
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.tx
                .send(Command::Sync(reply))
                .map_err(|_| self.closed())?;
            answer.await.map_err(|_| self.closed())?
        })
    }

    fn metrics(&self) -> &Arc<QueueMetrics> {
        &self.shared.metrics
    }

    /// Damaged records found at open, plus records that failed their checksum when read
    /// back for a pop later (each dropped and acknowledged; the count only grows).
    fn corrupt_records(&self) -> u64 {
        self.shared.corrupt.load(Ordering::Relaxed)
    }
}

impl Drop for DiskQueue {
    /// Stops the writer after it has written what it holds, fsynced (unless
    /// `fsync = "never"`) and rewritten the ack file; blocks until then.
    fn drop(&mut self) {
        self.shared.core.close();
        let _ = self.tx.send(Command::Shutdown);
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!(queue = %self.shared.name, "queue writer thread panicked");
        }
    }
}
