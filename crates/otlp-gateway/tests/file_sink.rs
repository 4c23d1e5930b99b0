//! The JSONL file sink on real files: format, rotation, flushing, shutdown, concurrency
//! and errors.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use otlp_core::codec::json;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{ExportError, Exporter, OtlpRequest, Payload, Signal};
use otlp_gateway::loadgen::{Generator, GeneratorConfig};
use otlp_gateway::pipeline::file_sink::{FileSink, FileSinkConfig, FileSinkError};

fn generator(signal: Signal, items: usize, seed: u64) -> Generator {
    Generator::new(GeneratorConfig {
        batch_items: items,
        seed,
        ..GeneratorConfig::new(signal)
    })
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} does not end with a newline",
        path.display()
    );
    text.lines().map(str::to_owned).collect()
}

fn decode_line<T: OtlpRequest + json::JsonMessage>(line: &str) -> T {
    json::from_slice(line.as_bytes()).unwrap_or_else(|e| panic!("not OTLP/JSON: {e}: {line}"))
}

fn sorted_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_line_is_the_exported_request_in_otlp_json() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    let mut sent = Vec::new();
    for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
        let mut g = generator(signal, 20, 3);
        for _ in 0..3 {
            let payload = g.next_payload();
            sink.export(payload.clone()).await.unwrap();
            sent.push(payload);
        }
    }
    sink.shutdown().await.unwrap();

    let traces = lines(&dir.path().join("traces.jsonl"));
    let metrics = lines(&dir.path().join("metrics.jsonl"));
    let logs = lines(&dir.path().join("logs.jsonl"));
    assert_eq!((traces.len(), metrics.len(), logs.len()), (3, 3, 3));
    for (line, payload) in traces.iter().zip(&sent[0..3]) {
        let back: ExportTraceServiceRequest = decode_line(line);
        assert_eq!(back, payload.decode::<ExportTraceServiceRequest>().unwrap());
        assert_eq!(back.item_count(), 20);
        // Lower-case hex ids and string 64-bit integers, as the Collector writes them.
        assert!(line.contains(r#""traceId":""#) && line.contains(r#""startTimeUnixNano":""#));
    }
    for (line, payload) in metrics.iter().zip(&sent[3..6]) {
        let back: ExportMetricsServiceRequest = decode_line(line);
        assert_eq!(
            back,
            payload.decode::<ExportMetricsServiceRequest>().unwrap()
        );
    }
    for (line, payload) in logs.iter().zip(&sent[6..9]) {
        let back: ExportLogsServiceRequest = decode_line(line);
        assert_eq!(back, payload.decode::<ExportLogsServiceRequest>().unwrap());
    }
    // jq reads every line as a JSON value of its own.
    for line in traces.iter().chain(&metrics).chain(&logs) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value.is_object());
    }
    let on_disk: u64 = ["traces.jsonl", "metrics.jsonl", "logs.jsonl"]
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert_eq!(sink.lines(), 9);
    assert_eq!(sink.bytes(), on_disk);
    assert_eq!(sink.rotations(), 0);
}

#[tokio::test]
async fn rotation_renames_in_order_and_keeps_keep_files() {
    let dir = tempfile::tempdir().unwrap();
    let payload = generator(Signal::Traces, 5, 9).next_payload();
    let line_len = json::to_vec(&payload.decode::<ExportTraceServiceRequest>().unwrap()).len() + 1;
    let config = FileSinkConfig {
        rotate_bytes: 3 * line_len as u64,
        keep_files: 2,
        ..FileSinkConfig::new(dir.path())
    };
    let sink = FileSink::open(config.clone()).unwrap();
    for _ in 0..10 {
        sink.export(payload.clone()).await.unwrap();
    }
    sink.shutdown().await.unwrap();

    // 3 lines a file: rotations before lines 4, 7 and 10 make rotated files 1, 2 and 3;
    // the two newest (2 and 3) are kept, 1 is deleted.
    assert_eq!(sink.rotations(), 3);
    let names = sorted_dir(dir.path());
    let rotated: Vec<&String> = names.iter().filter(|n| n.starts_with("traces-")).collect();
    assert_eq!(rotated.len(), 2, "{names:?}");
    assert!(rotated[0].starts_with("traces-000002-"), "{names:?}");
    assert!(rotated[1].starts_with("traces-000003-"), "{names:?}");
    for name in &rotated {
        assert!(name.ends_with("Z.jsonl"), "{name}");
        assert_eq!(lines(&dir.path().join(name)).len(), 3);
    }
    assert_eq!(lines(&dir.path().join("traces.jsonl")).len(), 1);
    assert!(
        names.contains(&"metrics.jsonl".to_owned()) && names.contains(&"logs.jsonl".to_owned())
    );

    // A restart appends to the current file and continues the numbering.
    let sink = FileSink::open(config).unwrap();
    for _ in 0..3 {
        sink.export(payload.clone()).await.unwrap();
    }
    sink.shutdown().await.unwrap();
    let names = sorted_dir(dir.path());
    let rotated: Vec<&String> = names.iter().filter(|n| n.starts_with("traces-")).collect();
    assert_eq!(rotated.len(), 2, "{names:?}");
    assert!(rotated[0].starts_with("traces-000003-"), "{names:?}");
    assert!(rotated[1].starts_with("traces-000004-"), "{names:?}");
    assert_eq!(lines(&dir.path().join("traces.jsonl")).len(), 1);
}

#[tokio::test]
async fn a_line_larger_than_rotate_bytes_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig {
        rotate_bytes: 100,
        ..FileSinkConfig::new(dir.path())
    })
    .unwrap();
    let mut g = generator(Signal::Logs, 10, 1);
    for _ in 0..3 {
        sink.export(g.next_payload()).await.unwrap();
    }
    sink.shutdown().await.unwrap();
    assert_eq!(sink.rotations(), 2);
    for name in sorted_dir(dir.path())
        .iter()
        .filter(|n| n.starts_with("logs"))
    {
        assert_eq!(lines(&dir.path().join(name)).len(), 1, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn lines_reach_the_file_within_the_flush_interval_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    let payload = generator(Signal::Traces, 3, 2).next_payload();
    sink.export(payload.clone()).await.unwrap();
    // An idle writer writes out at once; the file has the line long before 1 s passed.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let now = lines(&dir.path().join("traces.jsonl"));
    assert_eq!(now.len(), 1);
    let back: ExportTraceServiceRequest = decode_line(&now[0]);
    assert_eq!(back, payload.decode().unwrap());
    assert_eq!(sink.lines(), 1);
    // An explicit flush with nothing buffered is fine.
    sink.flush().await.unwrap();
}

#[tokio::test]
async fn shutdown_flushes_and_later_exports_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    let mut g = generator(Signal::Metrics, 8, 4);
    let exports: Vec<_> = (0..20).map(|_| sink.export(g.next_payload())).collect();
    futures_util::future::try_join_all(exports).await.unwrap();
    sink.shutdown().await.unwrap();
    assert_eq!(lines(&dir.path().join("metrics.jsonl")).len(), 20);
    let err = sink.export(g.next_payload()).await.unwrap_err();
    assert!(matches!(err, ExportError::Shutdown), "{err}");
    assert!(matches!(sink.flush().await, Err(ExportError::Shutdown)));
    // Shutting down twice is harmless.
    sink.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_the_sink_writes_out_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    sink.export(generator(Signal::Logs, 4, 5).next_payload())
        .await
        .unwrap();
    drop(sink);
    assert_eq!(lines(&dir.path().join("logs.jsonl")).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exports_give_whole_lines_never_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(
        FileSink::open(FileSinkConfig {
            rotate_bytes: 256 * 1024,
            keep_files: 1000,
            ..FileSinkConfig::new(dir.path())
        })
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            // Different sizes per task so an interleaving would break the JSON.
            let mut g = generator(Signal::Traces, 1 + task as usize * 7, task);
            let mut items = 0;
            for _ in 0..40 {
                let p = g.next_payload();
                items += p.items();
                sink.export(p).await.unwrap();
            }
            items
        }));
    }
    let mut items_sent = 0;
    for t in tasks {
        items_sent += t.await.unwrap();
    }
    sink.shutdown().await.unwrap();
    assert!(sink.rotations() > 0, "the test should cross rotations");

    let mut count = 0;
    let mut items = 0;
    for name in sorted_dir(dir.path())
        .iter()
        .filter(|n| n.starts_with("traces"))
    {
        for line in lines(&dir.path().join(name)) {
            let r: ExportTraceServiceRequest = decode_line(&line);
            items += r.item_count();
            count += 1;
        }
    }
    assert_eq!(count, 320);
    assert_eq!(items, items_sent);
    assert_eq!(sink.lines(), 320);
}

#[test]
fn an_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = FileSink::open(FileSinkConfig::new(file.join("data"))).unwrap_err();
    assert!(matches!(err, FileSinkError::CreateDir { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("not-a-dir/data"), "{message}");
    assert!(
        message.contains("cannot create the file sink directory"),
        "{message}"
    );

    // A file name taken by a directory: cannot be opened for appending.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("logs.jsonl")).unwrap();
    let err = FileSink::open(FileSinkConfig::new(&data)).unwrap_err();
    assert!(matches!(err, FileSinkError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("logs.jsonl"), "{err}");

    let err = FileSink::open(FileSinkConfig {
        rotate_bytes: 0,
        ..FileSinkConfig::new(dir.path().join("ok"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("rotate_bytes"), "{err}");
}

#[tokio::test]
async fn a_full_disk_fails_the_export_retryably_and_leaves_other_files_working() {
    let dir = tempfile::tempdir().unwrap();
    // /dev/full answers every write with ENOSPC, like a full disk.
    if !Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here; skipping");
        return;
    }
    std::os::unix::fs::symlink("/dev/full", dir.path().join("traces.jsonl")).unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    let err = sink
        .export(generator(Signal::Traces, 2, 1).next_payload())
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Transport(_)), "{err}");
    assert!(err.is_retryable(), "the queue must keep the data: {err}");
    assert!(err.to_string().contains("traces.jsonl"), "{err}");
    assert_eq!(sink.write_errors(), 1);
    assert_eq!(sink.lines(), 0);

    sink.export(generator(Signal::Logs, 2, 1).next_payload())
        .await
        .unwrap();
    sink.shutdown().await.ok();
    assert_eq!(lines(&dir.path().join("logs.jsonl")).len(), 1);
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(FileSinkConfig::new(dir.path())).unwrap();
    let garbage = Payload::new(Signal::Traces, Bytes::from_static(b"\xff\xff\xff"), 1);
    let err = sink.export(garbage).await.unwrap_err();
    assert!(matches!(err, ExportError::InvalidRequest(_)), "{err}");
    assert!(!err.is_retryable());
    sink.shutdown().await.unwrap();
    assert!(lines(&dir.path().join("traces.jsonl")).is_empty());
}
