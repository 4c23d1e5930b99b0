//! The gateway's own metrics, exported over OTLP to another gateway that writes them to
//! its JSONL file sink.

use std::time::Duration;

use otlp_gateway::Gateway;
use otlp_gateway::config::GatewayConfig;

fn config(data_dir: &std::path::Path, extra: &str) -> GatewayConfig {
    let text = format!(
        r#"
data_dir = "{}"
shutdown_grace = "2s"
[receivers.grpc]
addr = "127.0.0.1:0"
[receivers.http]
addr = "127.0.0.1:0"
[admin]
enabled = false
{extra}
"#,
        data_dir.display()
    );
    GatewayConfig::from_toml_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_metrics_reach_the_configured_endpoint() {
    let upstream_dir = tempfile::tempdir().unwrap();
    let upstream = Gateway::start(config(upstream_dir.path(), ""))
        .await
        .unwrap();
    let grpc = upstream.grpc_addr().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(config(
        dir.path(),
        &format!("[self_telemetry]\nendpoint = \"grpc://{grpc}\"\ninterval = \"100ms\""),
    ))
    .await
    .unwrap();

    let file = upstream_dir.path().join("metrics.jsonl");
    let mut text = String::new();
    for _ in 0..150 {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("otlp_gateway.received.items") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.shutdown().await;
    upstream.shutdown().await;
    let line = text
        .lines()
        .find(|l| l.contains("otlp_gateway.received.items"))
        .unwrap_or_else(|| panic!("no self-telemetry in {}: {text:?}", file.display()));
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    let resource = &value["resourceMetrics"][0]["resource"]["attributes"];
    assert!(
        resource.to_string().contains("otlp-gateway"),
        "service.name missing: {resource}"
    );
    for name in [
        "otlp_gateway.accepted.items",
        "otlp_gateway.refused.items",
        "otlp_gateway.dropped.items",
        "otlp_gateway.queue.bytes",
        "otlp_gateway.degradation.level",
    ] {
        assert!(line.contains(name), "{name} missing from {line}");
    }
}
