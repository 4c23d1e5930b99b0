//! Reading a queue directory back at open: verify every record, skip what was acked,
//! cut damaged tails, delete segments with nothing left to deliver.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use otlp_core::PayloadHeader;
use tokio::time::Instant;

use super::format::{
    AckState, Parsed, SEGMENT_HEADER_LEN, parse_record, parse_segment_name, segment_header,
};
use super::{DiskEntry, Segment};

/// What a queue directory held.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// Entries not acknowledged, in seq order.
    pub(crate) entries: Vec<DiskEntry>,
    /// Segments that still hold such entries.
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// The next seq to assign.
    pub(crate) next_seq: u64,
    /// Damaged records found (each damaged spot counts once: the rest of its segment
    /// cannot be framed and is cut off).
    pub(crate) corrupt: u64,
    /// Record bytes of `entries`.
    pub(crate) bytes: u64,
}

pub(crate) const ACK_FILE: &str = "ack";
pub(crate) const ACK_TMP: &str = "ack.tmp";

pub(crate) fn read_ack_state(dir: &Path) -> io::Result<AckState> {
    match fs::read(dir.join(ACK_FILE)) {
        Ok(buf) => Ok(AckState::decode(&buf).unwrap_or_else(|| {
            tracing::warn!(dir = %dir.display(), "queue ack file is damaged; replaying every record still on disk");
            AckState::default()
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AckState::default()),
        Err(e) => Err(e),
    }
}

fn cut(path: &Path, at: usize) {
    let result = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(at as u64).and_then(|()| f.sync_data()));
    if let Err(e) = result {
        tracing::warn!(segment = %path.display(), error = %e, "cannot cut a damaged segment tail");
    }
}

pub(crate) fn replay(dir: &Path) -> io::Result<Replayed> {
    let acks = read_ack_state(dir)?;
    let _ = fs::remove_file(dir.join(ACK_TMP));

    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
            ids.push((id, entry.path()));
        }
    }
    ids.sort();

    let mut out = Replayed {
        entries: Vec::new(),
        segments: BTreeMap::new(),
        next_seq: 0,
        corrupt: 0,
        bytes: 0,
    };
    let mut max_seq: Option<u64> = None;
    for (id, path) in ids {
        let buf = fs::read(&path)?;
        if buf.len() < SEGMENT_HEADER_LEN && segment_header().starts_with(&buf) {
            // Created, header not (fully) written: a crash while rolling. Nothing in it.
            fs::remove_file(&path)?;
            continue;
        }
        if buf.len() < SEGMENT_HEADER_LEN || buf[..SEGMENT_HEADER_LEN] != segment_header() {
            out.corrupt += 1;
            let aside = path.with_extension("seg.corrupt");
            tracing::error!(segment = %path.display(), moved_to = %aside.display(), "not a queue segment (bad header); set aside");
            fs::rename(&path, &aside)?;
            continue;
        }
        let mut off = SEGMENT_HEADER_LEN;
        let mut live = 0u64;
        let mut prev: Option<u64> = None;
        loop {
            match parse_record(&buf[off..]) {
                Parsed::End => break,
                Parsed::Record(v) if prev.is_none_or(|p| v.seq > p) => {
                    prev = Some(v.seq);
                    max_seq = max_seq.max(Some(v.seq));
                    if !acks.is_acked(v.seq) {
                        live += 1;
                        out.bytes += v.record_len as u64;
                        out.entries.push(DiskEntry {
                            seq: v.seq,
                            segment: id,
                            offset: off as u64,
                            record_len: v.record_len as u32,
                            body_len: v.body_len,
                            header: PayloadHeader {
                                signal: v.signal,
                                items: v.items,
                                tenant: v.tenant,
                                received_at: Instant::now(),
                            },
                            cached: None,
                        });
                    }
                    off += v.record_len;
                }
                other => {
                    let reason = match other {
                        Parsed::Bad(reason) => reason,
                        _ => "sequence number out of order",
                    };
                    out.corrupt += 1;
                    tracing::error!(segment = %path.display(), offset = off, reason, "damaged queue record; the rest of the segment is cut off");
                    cut(&path, off);
                    break;
                }
            }
        }
        if live == 0 {
            fs::remove_file(&path)?;
        } else {
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            out.segments.insert(
                id,
                Segment {
                    file: Arc::new(file),
                    live,
                },
            );
        }
    }
    out.next_seq = max_seq.map_or(0, |s| s + 1).max(acks.end());
    Ok(out)
}

/// Make a directory entry (a new or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
