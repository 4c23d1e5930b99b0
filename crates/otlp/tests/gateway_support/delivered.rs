//! What a gateway's JSONL file sink holds: `DATA_DIR/traces.jsonl`, `metrics.jsonl`,
//! `logs.jsonl` and their rotated siblings (`traces-<SEQ>-<UTC>.jsonl`), each line one
//! OTLP/JSON `Export*ServiceRequest`, read with our OTLP/JSON codec.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use otlp_core::codec::json;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::logs::v1::LogRecord;
use prost::Message as _;

/// `Status.code` of an error span.
const STATUS_CODE_ERROR: i32 = 2;

/// Everything found in one data directory's JSONL files.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// Span id (lowercase hex) -> how many times it was written.
    pub(crate) spans: HashMap<String, u32>,
    /// Span ids of spans with an ERROR status.
    pub(crate) error_spans: HashSet<String>,
    /// Metric names.
    pub(crate) metric_names: BTreeSet<String>,
    /// [`log_fingerprint`] of each log record -> how many times it was written.
    pub(crate) logs: HashMap<Vec<u8>, u32>,
    /// String bodies of log records -> how many times.
    pub(crate) log_bodies: HashMap<String, u32>,
    /// Whole lines read.
    pub(crate) lines: usize,
    /// Lines that did not decode (`file:line: error`), which a correct sink never writes.
    pub(crate) bad_lines: Vec<String>,
    /// Files read.
    pub(crate) files: Vec<PathBuf>,
}

impl Delivered {
    /// Span ids of `expected` that are missing here.
    pub(crate) fn missing_spans<'a>(
        &self,
        expected: impl IntoIterator<Item = &'a String>,
    ) -> Vec<String> {
        expected
            .into_iter()
            .filter(|id| !self.spans.contains_key(*id))
            .cloned()
            .collect()
    }

    /// Span ids written more than once (at-least-once delivery allows them).
    pub(crate) fn duplicate_spans(&self) -> usize {
        self.spans.values().filter(|n| **n > 1).count()
    }

    /// Spans written, duplicates included.
    pub(crate) fn span_writes(&self) -> u64 {
        self.spans.values().map(|n| u64::from(*n)).sum()
    }

    /// A one-line description for failure messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} distinct spans ({} written, {} duplicated), {} metric names, {} log records, \
             {} lines in {:?}, bad lines: {:?}",
            self.spans.len(),
            self.span_writes(),
            self.duplicate_spans(),
            self.metric_names.len(),
            self.logs.values().map(|n| u64::from(*n)).sum::<u64>(),
            self.lines,
            self.files
                .iter()
                .filter_map(|f| f.file_name())
                .collect::<Vec<_>>(),
            self.bad_lines.iter().take(5).collect::<Vec<_>>(),
        )
    }
}

/// Identifies a log record across encodings: timestamps, severity and the protobuf
/// encoding of its body.
pub(crate) fn log_fingerprint(record: &LogRecord) -> Vec<u8> {
    let mut key = Vec::new();
    key.extend_from_slice(&record.time_unix_nano.to_be_bytes());
    key.extend_from_slice(&record.observed_time_unix_nano.to_be_bytes());
    key.extend_from_slice(&record.severity_number.to_be_bytes());
    if let Some(body) = &record.body {
        key.extend_from_slice(&body.encode_to_vec());
    }
    key
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every `*.jsonl` file of the sink in `dir`. A last line without its newline (being
/// written, or cut by a crash) is left out; any other line that does not decode is listed
/// in [`Delivered::bad_lines`].
pub(crate) fn read(dir: &Path) -> Delivered {
    let mut out = Delivered::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = std::fs::read(&file) else {
            continue;
        };
        let whole = match text.iter().rposition(|b| *b == b'\n') {
            Some(end) => &text[..end],
            None => continue,
        };
        for (n, line) in whole.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            out.lines += 1;
            let result = if name.starts_with("traces") {
                json::from_slice::<ExportTraceServiceRequest>(line).map(|r| out.add_traces(&r))
            } else if name.starts_with("metrics") {
                json::from_slice::<ExportMetricsServiceRequest>(line).map(|r| out.add_metrics(&r))
            } else if name.starts_with("logs") {
                json::from_slice::<ExportLogsServiceRequest>(line).map(|r| out.add_logs(&r))
            } else {
                continue;
            };
            if let Err(e) = result {
                out.bad_lines.push(format!("{name}:{}: {e}", n + 1));
            }
        }
        out.files.push(file);
    }
    out
}

impl Delivered {
    fn add_traces(&mut self, request: &ExportTraceServiceRequest) {
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    let id = hex(&span.span_id);
                    if span
                        .status
                        .as_ref()
                        .is_some_and(|s| s.code == STATUS_CODE_ERROR)
                    {
                        self.error_spans.insert(id.clone());
                    }
                    *self.spans.entry(id).or_default() += 1;
                }
            }
        }
    }

    fn add_metrics(&mut self, request: &ExportMetricsServiceRequest) {
        for rm in &request.resource_metrics {
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    self.metric_names.insert(metric.name.clone());
                }
            }
        }
    }

    fn add_logs(&mut self, request: &ExportLogsServiceRequest) {
        use otlp_core::proto::common::v1::any_value::Value;
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    *self.logs.entry(log_fingerprint(record)).or_default() += 1;
                    if let Some(Value::StringValue(s)) =
                        record.body.as_ref().and_then(|b| b.value.as_ref())
                    {
                        *self.log_bodies.entry(s.clone()).or_default() += 1;
                    }
                }
            }
        }
    }
}
