//! The one thread that writes a disk queue: group commit of appends, fsync per policy,
//! ack file persistence and deletion of fully acknowledged segments.
//!
//! Pushers hand records over a channel; the writer takes everything pending (up to
//! [`GROUP_MAX_BYTES`]), writes it with one `pwrite` per segment touched, fsyncs once for
//! the group under `fsync = "always"`, then answers every pusher. A dedicated OS thread
//! keeps blocking file I/O off the async runtime and needs no task per write.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use bytes::Bytes;
use otlp_core::{PayloadHeader, Signal};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::format::{
    AckState, MAX_ACK_RANGES, SEGMENT_HEADER_LEN, encode_record, segment_file_name, segment_header,
};
use super::replay::{ACK_FILE, ACK_TMP, sync_dir};
use super::{DiskEntry, Segment, Shared};
use crate::config::FsyncPolicy;
use crate::pipeline::queue::QueueError;

/// Most bytes written as one group.
const GROUP_MAX_BYTES: u64 = 8 << 20;
/// Most often the ack file is rewritten (unless a segment is deleted, or on close/sync).
const ACK_PERSIST_EVERY: Duration = Duration::from_millis(100);

/// An append handed to the writer.
#[derive(Debug)]
pub(crate) struct PushRequest {
    pub(crate) signal: Signal,
    pub(crate) items: u64,
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) received_at: Instant,
    pub(crate) body: Bytes,
    /// CRC state over `body`, computed by the pusher.
    pub(crate) body_crc: crc32fast::Hasher,
    pub(crate) record_len: u64,
    pub(crate) reply: oneshot::Sender<Result<(), QueueError>>,
}

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    Push(PushRequest),
    /// fsync now, rewrite the ack file, then answer.
    Sync(oneshot::Sender<Result<(), QueueError>>),
    /// Acks happened: persist / delete segments when due.
    Wake,
    /// Finish: fsync, persist acks, stop.
    Shutdown,
}

#[derive(Debug)]
struct Active {
    id: u64,
    file: Arc<File>,
    size: u64,
}

/// A record written in the current chunk, not yet answered.
#[derive(Debug)]
struct Written {
    request: PushRequest,
    seq: u64,
    segment: u64,
    offset: u64,
}

#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) dir: PathBuf,
    pub(crate) rx: Receiver<Command>,
    pub(crate) policy: FsyncPolicy,
    pub(crate) interval: Duration,
    pub(crate) segment_bytes: u64,
    pub(crate) next_seq: u64,
    active: Option<Active>,
    dirty: bool,
    last_fsync: Instant,
    last_ack_persist: Instant,
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        dir: PathBuf,
        rx: Receiver<Command>,
        policy: FsyncPolicy,
        interval: Duration,
        segment_bytes: u64,
        next_seq: u64,
    ) -> Writer {
        Writer {
            shared,
            dir,
            rx,
            policy,
            interval,
            segment_bytes,
            next_seq,
            active: None,
            dirty: false,
            last_fsync: Instant::now(),
            last_ack_persist: Instant::now(),
            buf: Vec::new(),
        }
    }

    fn io_error(&self, what: &str, e: &io::Error) -> QueueError {
        QueueError::Io {
            queue: self.shared.name.clone(),
            message: format!("{what} in {}: {e}", self.dir.display()),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let fsync = (self.policy == FsyncPolicy::Interval && self.dirty)
            .then(|| self.last_fsync + self.interval);
        let acks = self
            .shared
            .lock()
            .ack_dirty
            .then(|| self.last_ack_persist + ACK_PERSIST_EVERY);
        match (fsync, acks) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            let first = match self.next_deadline() {
                None => match self.rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break,
                },
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(c) => Some(c),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            let mut pushes = Vec::new();
            let mut syncs = Vec::new();
            let mut shutdown = false;
            let mut group_bytes = 0;
            let mut next = first;
            while let Some(command) = next.take() {
                match command {
                    Command::Push(p) => {
                        group_bytes += p.record_len;
                        pushes.push(p);
                    }
                    Command::Sync(reply) => syncs.push(reply),
                    Command::Wake => self.shared.wake_pending.store(false, Ordering::Release),
                    Command::Shutdown => shutdown = true,
                }
                if shutdown || group_bytes >= GROUP_MAX_BYTES {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            if !pushes.is_empty() {
                self.write_group(pushes);
            }
            let now = Instant::now();
            if self.policy == FsyncPolicy::Interval
                && self.dirty
                && now >= self.last_fsync + self.interval
                && let Err(e) = self.fsync_active()
            {
                tracing::error!(queue = %self.shared.name, error = %e, "queue fsync failed");
            }
            if !syncs.is_empty() {
                let result = self
                    .fsync_active()
                    .map_err(|e| self.io_error("fsync", &e))
                    .and_then(|()| {
                        self.persist_acks()
                            .map_err(|e| self.io_error("writing the ack file", &e))
                    });
                for reply in syncs {
                    let _ = reply.send(result.clone());
                }
            } else {
                let (dirty, deletions) = {
                    let st = self.shared.lock();
                    (st.ack_dirty, !st.to_delete.is_empty())
                };
                if deletions || (dirty && now >= self.last_ack_persist + ACK_PERSIST_EVERY) {
                    self.persist_logged();
                }
            }
            if shutdown {
                break;
            }
        }
        self.finish();
    }

    fn persist_logged(&mut self) {
        if let Err(e) = self.persist_acks() {
            tracing::warn!(queue = %self.shared.name, error = %e, "cannot write the queue ack file; will retry");
        }
    }

    fn finish(&mut self) {
        if self.policy != FsyncPolicy::Never
            && let Err(e) = self.fsync_active()
        {
            tracing::error!(queue = %self.shared.name, error = %e, "queue fsync at shutdown failed");
        }
        self.persist_logged();
        while let Ok(command) = self.rx.try_recv() {
            let closed = Err(QueueError::Closed(self.shared.name.clone()));
            match command {
                Command::Push(p) => {
                    self.shared.release_reservation(p.record_len);
                    let _ = p.reply.send(closed);
                }
                Command::Sync(reply) => {
                    let _ = reply.send(closed);
                }
                Command::Wake | Command::Shutdown => {}
            }
        }
    }

    fn fsync_active(&mut self) -> io::Result<()> {
        if let Some(active) = &self.active {
            active.file.sync_data()?;
            self.shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.dirty = false;
        self.last_fsync = Instant::now();
        Ok(())
    }

    fn create_segment(&mut self) -> io::Result<()> {
        let id = self.next_seq;
        let path = self.dir.join(segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let init = file.write_all_at(&segment_header(), 0).and_then(|()| {
            if self.policy == FsyncPolicy::Never {
                return Ok(());
            }
            file.sync_data()?;
            sync_dir(&self.dir)?;
            self.shared.metrics.fsyncs.fetch_add(2, Ordering::Relaxed);
            Ok(())
        });
        if let Err(e) = init {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.shared
            .metrics
            .written_bytes
            .fetch_add(SEGMENT_HEADER_LEN as u64, Ordering::Relaxed);
        let file = Arc::new(file);
        let mut st = self.shared.lock();
        st.segments.insert(
            id,
            Segment {
                file: Arc::clone(&file),
                live: 0,
            },
        );
        st.active = Some(id);
        drop(st);
        self.active = Some(Active {
            id,
            file,
            size: SEGMENT_HEADER_LEN as u64,
        });
        Ok(())
    }

    /// Stop appending to the active segment (rolled, or after a write error).
    fn retire_active(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        let mut st = self.shared.lock();
        st.active = None;
        if st.segments.get(&active.id).is_some_and(|s| s.live == 0) {
            st.segments.remove(&active.id);
            st.to_delete.push(active.id);
        }
    }

    fn write_group(&mut self, pushes: Vec<PushRequest>) {
        let mut chunk: Vec<Written> = Vec::new();
        self.buf.clear();
        let mut pushes = pushes.into_iter();
        while let Some(p) = pushes.next() {
            let roll = self.active.as_ref().is_some_and(|a| {
                let size = a.size + self.buf.len() as u64;
                size > SEGMENT_HEADER_LEN as u64 && size + p.record_len > self.segment_bytes
            });
            let step = if roll {
                self.flush_chunk(&mut chunk, self.policy != FsyncPolicy::Never)
                    .map(|()| self.retire_active())
            } else {
                Ok(())
            }
            .and_then(|()| {
                if self.active.is_none() {
                    self.create_segment()
                        .map_err(|e| self.io_error("creating a segment", &e))
                } else {
                    Ok(())
                }
            });
            if let Err(e) = step {
                self.fail(std::iter::once(p).chain(pushes), &e);
                return;
            }
            let Some(active) = &self.active else {
                continue;
            };
            let offset = active.size + self.buf.len() as u64;
            encode_record(
                &mut self.buf,
                self.next_seq,
                p.signal,
                p.items,
                p.tenant.as_deref(),
                &p.body,
                &p.body_crc,
            );
            chunk.push(Written {
                seq: self.next_seq,
                segment: active.id,
                offset,
                request: p,
            });
            self.next_seq += 1;
        }
        let always = self.policy == FsyncPolicy::Always;
        if let Err(e) = self.flush_chunk(&mut chunk, always) {
            tracing::error!(queue = %self.shared.name, error = %e, "queue write failed");
        }
    }

    /// Write the buffered chunk to the active segment, fsync it when asked, and answer
    /// its pushers. On an error the segment is cut back and retired, and every pusher of
    /// the chunk gets the error (nothing half-acknowledged).
    fn flush_chunk(&mut self, chunk: &mut Vec<Written>, sync: bool) -> Result<(), QueueError> {
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let start = active.size;
        let result = active.file.write_all_at(&self.buf, start).and_then(|()| {
            if sync {
                active.file.sync_data()?;
                self.shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        let len = self.buf.len() as u64;
        self.buf.clear();
        match result {
            Ok(()) => {
                active.size += len;
                self.shared
                    .metrics
                    .written_bytes
                    .fetch_add(len, Ordering::Relaxed);
                if sync {
                    self.dirty = false;
                    self.last_fsync = Instant::now();
                } else {
                    self.dirty = true;
                }
                self.commit(std::mem::take(chunk));
                Ok(())
            }
            Err(e) => {
                if let Err(cut) = active.file.set_len(start) {
                    tracing::error!(queue = %self.shared.name, error = %cut, "cannot cut a failed write back");
                }
                let err = self.io_error("writing a segment", &e);
                self.retire_active();
                self.fail(std::mem::take(chunk).into_iter().map(|w| w.request), &err);
                Err(err)
            }
        }
    }

    fn fail(&mut self, requests: impl Iterator<Item = PushRequest>, err: &QueueError) {
        for p in requests {
            self.shared.release_reservation(p.record_len);
            let _ = p.reply.send(Err(err.clone()));
        }
        // Seqs handed to failed records are never reused: they count as acknowledged.
        self.shared.lock().next_seq = self.next_seq;
    }

    fn commit(&mut self, chunk: Vec<Written>) {
        let mut entries = Vec::with_capacity(chunk.len());
        let mut replies = Vec::with_capacity(chunk.len());
        let mut bytes = 0;
        {
            let mut st = self.shared.lock();
            for w in chunk {
                st.unacked.insert(w.seq);
                if let Some(seg) = st.segments.get_mut(&w.segment) {
                    seg.live += 1;
                }
                bytes += w.request.record_len;
                let p = w.request;
                let body_len = p.body.len();
                let cached = self.shared.try_cache(p.body.len() as u64).then_some(p.body);
                entries.push(DiskEntry {
                    seq: w.seq,
                    segment: w.segment,
                    offset: w.offset,
                    record_len: p.record_len as u32,
                    body_len,
                    header: PayloadHeader {
                        signal: p.signal,
                        items: p.items,
                        tenant: p.tenant,
                        received_at: p.received_at,
                    },
                    cached,
                });
                replies.push(p.reply);
            }
            st.next_seq = self.next_seq;
        }
        let m = &self.shared.metrics;
        m.pushed.fetch_add(entries.len() as u64, Ordering::Relaxed);
        m.depth.fetch_add(entries.len() as u64, Ordering::Relaxed);
        m.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.shared.core.push_back(entries);
        for reply in replies {
            let _ = reply.send(Ok(()));
        }
    }

    /// Rewrite the ack file (temp + rename), then delete segments with nothing left.
    fn persist_acks(&mut self) -> io::Result<()> {
        let (state, to_delete) = {
            let mut st = self.shared.lock();
            st.ack_dirty = false;
            (
                ack_state(&st.unacked, st.next_seq),
                std::mem::take(&mut st.to_delete),
            )
        };
        let result = (|| {
            let tmp = self.dir.join(ACK_TMP);
            let file = File::create(&tmp)?;
            file.write_all_at(&state.encode(), 0)?;
            if self.policy != FsyncPolicy::Never {
                file.sync_data()?;
                self.shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            std::fs::rename(&tmp, self.dir.join(ACK_FILE))
        })();
        self.last_ack_persist = Instant::now();
        if result.is_err() {
            self.shared.lock().ack_dirty = true;
        }
        // Deleting only acknowledged segments is safe whether or not the ack file made it.
        for id in to_delete {
            let path = self.dir.join(segment_file_name(id));
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(segment = %path.display(), error = %e, "cannot delete an acknowledged segment");
            }
        }
        result
    }
}

/// The ack state from the unacknowledged seqs: everything below the lowest one and every
/// gap between them (up to `next_seq`) is acknowledged.
pub(crate) fn ack_state(unacked: &std::collections::BTreeSet<u64>, next_seq: u64) -> AckState {
    let mut iter = unacked.iter().copied();
    let Some(first) = iter.next() else {
        return AckState {
            watermark: next_seq,
            ranges: Vec::new(),
        };
    };
    let mut ranges = Vec::new();
    let mut prev = first;
    for seq in iter.chain(std::iter::once(next_seq)) {
        if ranges.len() == MAX_ACK_RANGES {
            break;
        }
        if seq > prev + 1 {
            ranges.push((prev + 1, seq));
        }
        prev = seq;
    }
    AckState {
        watermark: first,
        ranges,
    }
}
