//! The configuration shipped in deploy/kubernetes/configmap.yaml is valid.

use otlp_gateway::config::GatewayConfig;

#[test]
fn kubernetes_configmap_holds_a_valid_configuration() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes/configmap.yaml"
    );
    let yaml = std::fs::read_to_string(path).unwrap();
    let start = yaml.find("gateway.toml: |").expect("gateway.toml key") + "gateway.toml: |".len();
    let toml: String = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let config = GatewayConfig::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.receivers.grpc.addr, "0.0.0.0:4317");
    assert_eq!(config.exporters.len(), 1);
    // Drains within the pod's termination grace period (60 s in statefulset.yaml).
    assert!(config.shutdown_grace.get() < std::time::Duration::from_secs(60));
}
