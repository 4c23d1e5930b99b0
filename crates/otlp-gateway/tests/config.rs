//! The configuration as users meet it: TOML text and files, flags, `OTEL_*` variables,
//! and the errors that name the key of each mistake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use otlp_gateway::config::{
    ByteSize, CompressionName, ConfigError, EnvSource, ExporterKind, GatewayConfig, HumanDuration,
    Overrides, QueueKind,
};

fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::from_toml_str(text)
}

/// The error for `text`, which must fail.
fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(config) => panic!("expected an error for\n{text}\ngot {config:#?}"),
        Err(e) => e,
    }
}

/// Asserts that `text` fails on `key` with a message containing every one of `words`.
fn fails_on(text: &str, key: &str, words: &[&str]) {
    let e = error(text);
    assert_eq!(e.key, key, "wrong key for\n{text}\nerror: {e}");
    for word in words {
        assert!(
            e.message.contains(word),
            "message {:?} lacks {word:?}\n(for key {key})",
            e.message
        );
    }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn no_env() -> impl Fn(&str) -> Option<String> + Send + Sync {
    |_: &str| None
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/otlp-gateway.example.toml")
}

const GRPC_EXPORTER: &str = r#"
[[exporters]]
name = "a"
kind = "grpc"
endpoint = "grpc://127.0.0.1:4317"
"#;

// ------------------------------------------------------------------ valid configurations

#[test]
fn defaults_validate_and_match_the_design() {
    let config = GatewayConfig::default();
    config.validate().unwrap();
    assert_eq!(config.receivers.grpc.addr, "127.0.0.1:4317");
    assert_eq!(config.receivers.http.addr, "127.0.0.1:4318");
    assert_eq!(config.admin.addr, "127.0.0.1:8888");
    assert_eq!(config.data_dir, PathBuf::from("./otlp-data"));
    assert_eq!(config.receivers.http.max_request_bytes, ByteSize::mib(64));
    assert!(config.exporters.is_empty());
    // An empty file is the defaults.
    assert_eq!(parse("").unwrap(), config);
}

#[test]
fn the_example_file_validates() {
    let path = example_path();
    let config = GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.exporters.len(), 4);
    assert_eq!(config.groups.len(), 1);
    assert_eq!(config.groups[0].members, ["primary", "secondary"]);
    assert_eq!(config.receivers.grpc.addr, "0.0.0.0:4317");
    // The analytics exporter's own queue takes the keys it leaves out from [queue].
    let analytics = config
        .exporters
        .iter()
        .find(|e| e.name == "analytics")
        .unwrap();
    let queue = analytics.queue.as_ref().unwrap();
    assert_eq!(queue.kind, QueueKind::Memory);
    assert_eq!(queue.max_bytes, ByteSize::mib(256));
    assert_eq!(queue.segment_bytes, config.queue.segment_bytes);
    // Through the same path as `otlp gateway --config`.
    let effective =
        GatewayConfig::effective(Some(&path), &Overrides::default(), &no_env()).unwrap();
    assert_eq!(effective, config);
}

#[test]
fn units_and_tables_parse() {
    let config = parse(
        r#"
        shutdown_grace = "1m30s"
        [limits]
        memory_soft = "100MB"
        memory_hard = 209715200
        retry_after = 1500
        [receivers.grpc]
        tls = { cert = "Cargo.toml", key = "Cargo.toml" }
        "#,
    );
    // Cargo.toml is not a certificate, but validation only checks that the files exist;
    // the listener reports bad PEM when it loads them. Tests run in the crate directory.
    let config = config.unwrap();
    assert_eq!(config.shutdown_grace, HumanDuration::secs(90));
    assert_eq!(config.limits.memory_soft, ByteSize(100_000_000));
    assert_eq!(config.limits.memory_hard, ByteSize::mib(200));
    assert_eq!(config.limits.retry_after, HumanDuration::millis(1500));
}

#[test]
fn an_exporter_queue_overrides_the_shared_queue_key_by_key() {
    let config = parse(
        r#"
        [queue]
        kind = "memory"
        max_bytes = "128MiB"
        [[exporters]]
        name = "a"
        kind = "http"
        endpoint = "http://127.0.0.1:4318"
        queue = { max_bytes = "96MiB" }
        [[exporters]]
        name = "b"
        kind = "http"
        endpoint = "http://127.0.0.1:4319"
        "#,
    )
    .unwrap();
    let a = config.exporters[0].queue.as_ref().unwrap();
    assert_eq!(a.kind, QueueKind::Memory, "kind comes from [queue]");
    assert_eq!(a.max_bytes, ByteSize::mib(96));
    assert_eq!(
        config.exporters[1].queue, None,
        "no table: the route uses [queue]"
    );
}

#[test]
fn defaults_round_trip_through_toml() {
    let defaults = GatewayConfig::default();
    let text = toml::to_string(&defaults).unwrap();
    assert_eq!(parse(&text).unwrap(), defaults, "serialized:\n{text}");
}

#[test]
fn a_full_configuration_round_trips_through_toml() {
    let example = GatewayConfig::load(&example_path()).unwrap();
    let text = toml::to_string(&example).unwrap();
    assert_eq!(parse(&text).unwrap(), example, "serialized:\n{text}");
}

// ------------------------------------------------------------------ syntax, types, unknown keys

#[test]
fn unknown_top_level_key_is_named_with_its_line() {
    fails_on(
        "data_dir = \"x\"\ncolour = \"blue\"\n",
        "colour",
        &["unknown field", "line 2, column 1"],
    );
}

#[test]
fn unknown_nested_keys_are_named_by_path() {
    fails_on(
        "[receivers.grpc]\nadr = \"127.0.0.1:1\"\n",
        "receivers.grpc.adr",
        &["unknown field", "line 2"],
    );
    fails_on(
        "[limits]\nmemory = \"1GiB\"\n",
        "limits.memory",
        &["unknown field", "memory_soft"],
    );
    fails_on(
        &format!("{GRPC_EXPORTER}\n[[exporters]]\nname = \"b\"\nkind = \"http\"\ncolour = 1\n"),
        "exporters[1].colour",
        &["unknown field"],
    );
    fails_on(
        "[[exporters]]\nname = \"a\"\nkind = \"grpc\"\nendpoint = \"grpc://h:1\"\nretry = { initial = \"1s\" }\n",
        "exporters[0].retry.initial",
        &["unknown field"],
    );
    fails_on(
        "receivers.http.tls = { cert = \"a\", key = \"b\", chain = \"c\" }\n",
        "receivers.http.tls.chain",
        &["unknown field"],
    );
}

#[test]
fn wrong_types_are_named() {
    fails_on(
        "[limits]\nmax_tenants = \"many\"\n",
        "limits.max_tenants",
        &["line 2"],
    );
    fails_on(
        "[receivers.grpc]\nenabled = \"yes\"\n",
        "receivers.grpc.enabled",
        &["bool"],
    );
    fails_on("exporters = 3\n", "exporters", &["line 1"]);
    fails_on(
        "[degradation]\nqueue_fill = [0.5, 0.6, 0.7]\n",
        "degradation.queue_fill",
        &[],
    );
    fails_on(
        "[[groups]]\nname = \"g\"\nmode = \"failover\"\nmembers = [\"a\", 2]\n",
        "groups[0].members[1]",
        &[],
    );
}

#[test]
fn bad_units_are_named() {
    fails_on(
        "[limits]\nmemory_soft = \"12 parsecs\"\n",
        "limits.memory_soft",
        &["unit", "parsecs"],
    );
    fails_on("[batch]\nlinger = \"5\"\n", "batch.linger", &["unit"]);
    fails_on("[batch]\nlinger = -5\n", "batch.linger", &["negative"]);
}

#[test]
fn bad_enum_values_are_named_with_the_choices() {
    let text = format!(
        "{GRPC_EXPORTER}\n[[exporters]]\nname = \"b\"\nkind = \"http\"\nendpoint = \"http://h:1\"\ncompression = \"lz4\"\n"
    );
    let e = error(&text);
    assert_eq!(e.key, "exporters[1].compression");
    for word in ["lz4", "none", "gzip", "zstd", "line 11, column 15"] {
        assert!(e.message.contains(word), "{e}");
    }
    assert!(
        e.to_string()
            .starts_with("exporters[1].compression: unknown variant"),
        "{e}"
    );
    fails_on(
        "[queue]\nkind = \"tape\"\n",
        "queue.kind",
        &["tape", "disk", "memory"],
    );
    fails_on(
        "[auth]\nmode = \"basic\"\n",
        "auth.mode",
        &["basic", "bearer"],
    );
}

#[test]
fn missing_required_keys_are_named() {
    fails_on(
        "[[exporters]]\nname = \"a\"\n",
        "exporters[0].kind",
        &["missing field"],
    );
    fails_on(
        &format!("{GRPC_EXPORTER}[[exporters]]\nkind = \"grpc\"\n"),
        "exporters[1].name",
        &["missing field", "line 6"],
    );
    fails_on(
        "[[groups]]\nname = \"g\"\nmembers = []\n",
        "groups[0].mode",
        &["missing field"],
    );
}

#[test]
fn syntax_errors_say_where() {
    let e = error("[receivers.grpc]\naddr = 127.0.0.1:4317\n");
    assert!(e.message.contains("invalid TOML"), "{e}");
    assert!(e.message.contains("line 2"), "{e}");
    assert_eq!(e.key, "receivers.grpc.addr", "{e}");
    let e = error("[receivers\n");
    assert!(e.message.contains("line 1"), "{e}");
    let e = error("a = 1\na = 2\n");
    assert!(e.message.contains("line 2"), "{e}");
}

// ------------------------------------------------------------------ values and cross-references

#[test]
fn duplicate_exporter_names() {
    fails_on(
        &format!("{GRPC_EXPORTER}{GRPC_EXPORTER}"),
        "exporters[1].name",
        &["\"a\"", "another exporter"],
    );
    fails_on(
        "[[exporters]]\nname = \"../etc\"\nkind = \"grpc\"\nendpoint = \"grpc://h:1\"\n",
        "exporters[0].name",
        &["queue directory"],
    );
}

#[test]
fn groups_are_checked() {
    let member_missing = format!(
        "{GRPC_EXPORTER}[[groups]]\nname = \"g\"\nmode = \"failover\"\nmembers = [\"a\", \"b\"]\n"
    );
    fails_on(
        &member_missing,
        "groups[0].members[1]",
        &["no exporter is named \"b\""],
    );
    let empty = "[[groups]]\nname = \"g\"\nmode = \"load_balance\"\nmembers = []\n";
    fails_on(empty, "groups[0].members", &["at least one"]);
    let shadow = format!(
        "{GRPC_EXPORTER}[[groups]]\nname = \"a\"\nmode = \"failover\"\nmembers = [\"a\"]\n"
    );
    fails_on(&shadow, "groups[0].name", &["exporter's name"]);
    let twice = format!(
        "{GRPC_EXPORTER}[[groups]]\nname = \"g\"\nmode = \"failover\"\nmembers = [\"a\"]\n\
         [[groups]]\nname = \"h\"\nmode = \"failover\"\nmembers = [\"a\"]\n"
    );
    fails_on(
        &twice,
        "groups[1].members[0]",
        &["already a member of group \"g\""],
    );
    let dup_group = format!(
        "{GRPC_EXPORTER}[[groups]]\nname = \"g\"\nmode = \"failover\"\nmembers = [\"a\"]\n\
         [[groups]]\nname = \"g\"\nmode = \"failover\"\nmembers = []\n"
    );
    fails_on(&dup_group, "groups[1].name", &["another group"]);
}

#[test]
fn addresses_are_checked() {
    fails_on(
        "[receivers.grpc]\naddr = \"example.com:4317\"\n",
        "receivers.grpc.addr",
        &["IP:PORT"],
    );
    fails_on("[admin]\naddr = \"127.0.0.1\"\n", "admin.addr", &[]);
    fails_on(
        "[receivers.http]\naddr = \"127.0.0.1:4317\"\n",
        "receivers.http.addr",
        &["receivers.grpc.addr"],
    );
    fails_on(
        "[admin]\naddr = \"0.0.0.0:4318\"\n",
        "admin.addr",
        &["receivers.http.addr"],
    );
    // Same port on different addresses, and port 0 (any free port) twice, are fine.
    parse("[admin]\naddr = \"127.0.0.2:4318\"\n").unwrap();
    parse("[receivers.grpc]\naddr = \"127.0.0.1:0\"\n[receivers.http]\naddr = \"localhost:0\"\n[admin]\naddr = \"[::1]:0\"\n").unwrap();
    // A disabled listener's port is free for others.
    parse("[receivers.http]\nenabled = false\n[admin]\naddr = \"127.0.0.1:4318\"\n").unwrap();
    fails_on(
        "[receivers.grpc]\nenabled = false\n[receivers.http]\nenabled = false\n",
        "receivers",
        &["both disabled"],
    );
    fails_on(
        "[receivers.grpc]\ncors_origins = [\"https://a.example\"]\n",
        "receivers.grpc.cors_origins",
        &["HTTP listener"],
    );
    fails_on(
        "[receivers.http]\ncors_origins = [\"a.example\"]\n",
        "receivers.http.cors_origins[0]",
        &[],
    );
}

#[test]
fn tls_files_must_exist_and_come_in_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let missing = dir.path().join("missing.crt");
    let toml_path = |p: &Path| p.display().to_string().replace('\\', "/");

    let ok = format!(
        "[receivers.http]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        toml_path(&cert),
        toml_path(&key)
    );
    parse(&ok).unwrap();
    let gone = format!(
        "[receivers.http]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        toml_path(&missing),
        toml_path(&key)
    );
    fails_on(&gone, "receivers.http.tls.cert", &["missing.crt"]);
    let no_key = format!(
        "[receivers.grpc]\ntls = {{ cert = \"{}\" }}\n",
        toml_path(&cert)
    );
    fails_on(&no_key, "receivers.grpc.tls.key", &["private key"]);
    let directory = format!(
        "[receivers.grpc]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        toml_path(&cert),
        toml_path(dir.path())
    );
    fails_on(&directory, "receivers.grpc.tls.key", &["not a file"]);

    let exporter = |tls: &str, endpoint: &str| {
        format!(
            "[[exporters]]\nname = \"a\"\nkind = \"grpc\"\nendpoint = \"{endpoint}\"\ntls = {tls}\n"
        )
    };
    parse(&exporter(
        &format!("{{ ca = \"{}\" }}", toml_path(&cert)),
        "https://h:4317",
    ))
    .unwrap();
    fails_on(
        &exporter(
            &format!("{{ cert = \"{}\" }}", toml_path(&cert)),
            "https://h:4317",
        ),
        "exporters[0].tls.key",
        &["together"],
    );
    fails_on(
        &exporter(
            &format!("{{ ca = \"{}\" }}", toml_path(&missing)),
            "https://h:4317",
        ),
        "exporters[0].tls.ca",
        &[],
    );
    fails_on(
        &exporter(
            &format!("{{ ca = \"{}\" }}", toml_path(&cert)),
            "grpc://h:4317",
        ),
        "exporters[0].tls",
        &["plaintext"],
    );
}

#[test]
fn limits_are_checked() {
    fails_on(
        "[limits]\nmemory_soft = \"512MiB\"\nmemory_hard = \"512MiB\"\n",
        "limits.memory_soft",
        &["less than limits.memory_hard"],
    );
    fails_on(
        "[limits]\nmemory_soft = \"1GiB\"\n",
        "limits.memory_soft",
        &["512MiB"],
    );
    fails_on(
        "[limits]\nmemory_soft = 0\n",
        "limits.memory_soft",
        &["more than 0"],
    );
    fails_on("[limits]\nretry_after = \"0\"\n", "limits.retry_after", &[]);
    fails_on(
        "[limits]\ntenant_burst_items = 5\n",
        "limits.tenant_burst_items",
        &[],
    );
    fails_on(
        "[receivers.http]\nmax_connections = 0\n",
        "receivers.http.max_connections",
        &[],
    );
}

#[test]
fn degradation_arrays_must_be_monotonic_and_in_range() {
    fails_on(
        "[degradation]\nqueue_fill = [0.5, 0.4, 0.8, 0.9]\n",
        "degradation.queue_fill[1]",
        &["ascend"],
    );
    fails_on(
        "[degradation]\nqueue_fill = [0.5, 0.6, 0.8, 1.5]\n",
        "degradation.queue_fill[3]",
        &["1.5"],
    );
    fails_on(
        "[degradation]\ncpu = [0, 0.6, 0.8, 0.9]\n",
        "degradation.cpu[0]",
        &[],
    );
    fails_on(
        "[degradation]\ntrace_keep_ratio = [1.0, 0.5, 0.6, 0.01]\n",
        "degradation.trace_keep_ratio[2]",
        &["no more"],
    );
    fails_on(
        "[degradation]\ntrace_keep_ratio = [1.0, 0.5, 0.1, -0.1]\n",
        "degradation.trace_keep_ratio[3]",
        &[],
    );
    fails_on(
        "[degradation]\nlog_min_severity = [1, 9, 13, 25]\n",
        "degradation.log_min_severity[3]",
        &["1 to 24"],
    );
    fails_on(
        "[degradation]\nlog_min_severity = [1, 13, 9, 17]\n",
        "degradation.log_min_severity[2]",
        &[],
    );
    fails_on(
        "[degradation]\ninterval = \"5s\"\ncool_down = \"1s\"\n",
        "degradation.cool_down",
        &[],
    );
}

#[test]
fn batch_and_queue_sizes_are_checked() {
    fails_on("[batch]\nmax_items = 0\n", "batch.max_items", &[]);
    fails_on(
        "[queue]\nsegment_bytes = \"4KiB\"\n",
        "queue.segment_bytes",
        &["64KiB"],
    );
    fails_on(
        "[queue]\nmax_bytes = \"100MiB\"\nsegment_bytes = \"200MiB\"\n",
        "queue.segment_bytes",
        &["queue.max_bytes"],
    );
    // A memory queue has no segments: a small one is fine.
    parse("[queue]\nkind = \"memory\"\nmax_bytes = \"64MiB\"\n").unwrap();
    fails_on(
        "[queue]\nkind = \"memory\"\nmax_bytes = \"16MiB\"\n",
        "receivers.grpc.max_request_bytes",
        &["never be queued"],
    );
    fails_on(
        &format!("{GRPC_EXPORTER}queue = {{ segment_bytes = \"1KiB\" }}\n"),
        "exporters[0].queue.segment_bytes",
        &[],
    );
}

#[test]
fn exporter_endpoints_are_checked_by_kind() {
    let exporter = |kind: &str, endpoint: &str| {
        format!("[[exporters]]\nname = \"x\"\nkind = \"{kind}\"\nendpoint = \"{endpoint}\"\n")
    };
    for ok in [
        "grpc://h:4317",
        "grpcs://h:4317",
        "http://h:4317",
        "https://[::1]:4317",
    ] {
        parse(&exporter("grpc", ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for ok in ["http://h:4318", "https://h:4318/prefix"] {
        parse(&exporter("http", ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    parse(&exporter("file", "./out")).unwrap();
    fails_on(
        &exporter("http", "grpc://h:4317"),
        "exporters[0].endpoint",
        &["scheme \"grpc\""],
    );
    fails_on(
        &exporter("grpc", "ftp://h:21"),
        "exporters[0].endpoint",
        &["scheme"],
    );
    fails_on(
        &exporter("http", "h:4318"),
        "exporters[0].endpoint",
        &["no scheme"],
    );
    fails_on(
        &exporter("file", "http://h"),
        "exporters[0].endpoint",
        &["directory"],
    );
    fails_on(
        &exporter("grpc", ""),
        "exporters[0].endpoint",
        &["required"],
    );
    // A file exporter without an endpoint writes under data_dir.
    parse("[[exporters]]\nname = \"x\"\nkind = \"file\"\n").unwrap();
    fails_on(
        "[[exporters]]\nname = \"x\"\nkind = \"http\"\n",
        "exporters[0].endpoint",
        &["required"],
    );
}

#[test]
fn exporter_settings_are_checked() {
    let with = |extra: &str| format!("{GRPC_EXPORTER}{extra}\n");
    fails_on(&with("workers = 0"), "exporters[0].workers", &["1 to 256"]);
    fails_on(
        &with("workers = 1000"),
        "exporters[0].workers",
        &["1 to 256"],
    );
    fails_on(&with("timeout = \"0\""), "exporters[0].timeout", &[]);
    fails_on(&with("signals = []"), "exporters[0].signals", &[]);
    fails_on(
        &with("signals = [\"traces\", \"traces\"]"),
        "exporters[0].signals[1]",
        &["twice"],
    );
    fails_on(
        &with("retry = { initial_backoff = \"10s\", max_backoff = \"1s\" }"),
        "exporters[0].retry.initial_backoff",
        &["max_backoff"],
    );
    fails_on(
        &with("circuit_breaker = { failure_rate = 0.0 }"),
        "exporters[0].circuit_breaker.failure_rate",
        &[],
    );
    fails_on(
        &with("circuit_breaker = { failure_rate = 1.5 }"),
        "exporters[0].circuit_breaker.failure_rate",
        &[],
    );
    fails_on(
        &with("keep_files = 3"),
        "exporters[0].keep_files",
        &["file"],
    );
}

#[test]
fn headers_must_be_valid_http() {
    let with = |headers: &str| format!("{GRPC_EXPORTER}headers = {headers}\n");
    parse(&with(
        "{ \"x-api-key\" = \"s3cret\", authorization = \"Bearer t\" }",
    ))
    .unwrap();
    fails_on(
        &with("{ \"bad header\" = \"v\" }"),
        "exporters[0].headers.\"bad header\"",
        &["header name"],
    );
    fails_on(
        &with("{ \"x-a\" = \"line\\nbreak\" }"),
        "exporters[0].headers.x-a",
        &["header value"],
    );
    fails_on(
        &with("{ \"Content-Type\" = \"text/plain\" }"),
        "exporters[0].headers.Content-Type",
        &["transport"],
    );
    fails_on(
        &with("{ \"X-A\" = \"1\", \"x-a\" = \"2\" }"),
        "exporters[0].headers.x-a",
        &["twice"],
    );
}

#[test]
fn auth_and_tenant_are_checked() {
    fails_on(
        "[auth]\nmode = \"bearer\"\n",
        "auth.tokens",
        &["tokens_file"],
    );
    fails_on(
        "[auth]\nmode = \"api_key\"\ntokens = []\n",
        "auth.tokens",
        &[],
    );
    parse("[auth]\nmode = \"bearer\"\ntokens = [\"t1\"]\n").unwrap();
    fails_on("[auth]\ntokens = [\"t1\"]\n", "auth.mode", &["none"]);
    fails_on(
        "[auth]\nmode = \"bearer\"\ntokens_file = \"/nonexistent/tokens\"\n",
        "auth.tokens_file",
        &["/nonexistent/tokens"],
    );
    fails_on(
        "[auth]\nmode = \"api_key\"\ntokens = [\"t\"]\nheader = \"x key\"\n",
        "auth.header",
        &["header name"],
    );
    fails_on(
        "[auth]\nmode = \"bearer\"\ntokens = [\"t\"]\nheader = \"x-key\"\n",
        "auth.header",
        &["api_key"],
    );
    fails_on(
        "[tenant]\nheader = \"x tenant\"\n",
        "tenant.header",
        &["header name"],
    );
    fails_on("[tenant]\ndefault = \"\"\n", "tenant.default", &[]);
}

#[test]
fn log_and_self_telemetry_are_checked() {
    parse("[log]\nlevel = \"otlp_gateway=debug,warn\"\n").unwrap();
    fails_on(
        "[log]\nlevel = \"verbose\"\n",
        "log.level",
        &["not a level"],
    );
    fails_on(
        "[log]\nlevel = \"otlp=loud\"\n",
        "log.level",
        &["tracing filter"],
    );
    fails_on("[log]\nformat = \"xml\"\n", "log.format", &["text", "json"]);
    parse("[self_telemetry]\nendpoint = \"grpc://127.0.0.1:4317\"\ninterval = \"10s\"\n").unwrap();
    fails_on(
        "[self_telemetry]\nendpoint = \"udp://127.0.0.1:4317\"\n",
        "self_telemetry.endpoint",
        &["scheme"],
    );
    fails_on(
        "[self_telemetry]\ninterval = \"10s\"\n",
        "self_telemetry.interval",
        &["endpoint"],
    );
}

// ------------------------------------------------------------------ flags and environment

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        "data_dir = \"/from/file\"\n[receivers.grpc]\naddr = \"127.0.0.1:5317\"\n\
         [receivers.http]\nenabled = false\n[admin]\naddr = \"127.0.0.1:5888\"\n",
    )
    .unwrap();
    let overrides = Overrides {
        grpc_addr: Some("127.0.0.1:6317".into()),
        http_addr: Some("0.0.0.0:6318".into()),
        admin_addr: None,
        data_dir: Some(dir.path().join("data")),
        exports: vec![
            "grpc://127.0.0.1:7317".into(),
            "https://upstream.example:4318".into(),
        ],
    };
    let config = GatewayConfig::effective(Some(&file), &overrides, &no_env()).unwrap();
    assert_eq!(config.receivers.grpc.addr, "127.0.0.1:6317");
    assert_eq!(config.receivers.http.addr, "0.0.0.0:6318");
    assert!(
        config.receivers.http.enabled,
        "--http-addr enables the listener"
    );
    assert_eq!(
        config.admin.addr, "127.0.0.1:5888",
        "no flag: the file's value"
    );
    assert_eq!(config.data_dir, dir.path().join("data"));
    let exporters: Vec<_> = config
        .exporters
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.endpoint.as_str()))
        .collect();
    assert_eq!(
        exporters,
        [
            ("export-1", ExporterKind::Grpc, "grpc://127.0.0.1:7317"),
            (
                "export-2",
                ExporterKind::Http,
                "https://upstream.example:4318"
            ),
        ]
    );
}

#[test]
fn export_names_skip_names_in_use() {
    let mut config =
        parse("[[exporters]]\nname = \"export-1\"\nkind = \"grpc\"\nendpoint = \"grpc://h:1\"\n")
            .unwrap();
    config
        .apply_overrides(&Overrides {
            exports: vec!["http://h:2".into()],
            ..Overrides::default()
        })
        .unwrap();
    assert_eq!(config.exporters[1].name, "export-2");
    config.validate().unwrap();
}

#[test]
fn bad_flags_name_the_flag() {
    let run = |o: Overrides| GatewayConfig::effective(None, &o, &no_env()).unwrap_err();
    let e = run(Overrides {
        exports: vec!["collector:4317".into()],
        ..Overrides::default()
    });
    assert_eq!(e.key, "--export");
    assert!(e.message.contains("grpc://"), "{e}");
    let e = run(Overrides {
        exports: vec!["grpc://:4317".into()],
        ..Overrides::default()
    });
    assert_eq!(e.key, "--export", "{e}");
    let e = run(Overrides {
        grpc_addr: Some("4317".into()),
        ..Overrides::default()
    });
    assert_eq!(e.key, "--grpc-addr", "{e}");
    let e = run(Overrides {
        admin_addr: Some("127.0.0.1:4317".into()),
        ..Overrides::default()
    });
    assert_eq!(
        e.key, "admin.addr",
        "a clash found after the flags applied: {e}"
    );
    let e = GatewayConfig::effective(
        Some(Path::new("/nonexistent/gateway.toml")),
        &Overrides::default(),
        &no_env(),
    )
    .unwrap_err();
    assert!(e.message.contains("/nonexistent/gateway.toml"), "{e}");
}

#[test]
fn otel_endpoint_adds_an_exporter_when_none_is_configured() {
    let vars = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
    let config = GatewayConfig::effective(None, &Overrides::default(), &vars).unwrap();
    assert_eq!(config.exporters.len(), 1);
    assert_eq!(config.exporters[0].name, "otel");
    assert_eq!(
        config.exporters[0].kind,
        ExporterKind::Http,
        "http/protobuf by default"
    );
    assert_eq!(config.exporters[0].endpoint, "http://collector:4318");

    let vars = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    let config = GatewayConfig::effective(None, &Overrides::default(), &vars).unwrap();
    assert_eq!(config.exporters[0].kind, ExporterKind::Grpc);

    // Exporters in the file win: the endpoint adds nothing.
    let mut config = parse(GRPC_EXPORTER).unwrap();
    config
        .apply_env(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://other:4318",
        )]))
        .unwrap();
    assert_eq!(config.exporters.len(), 1);
    assert_eq!(config.exporters[0].name, "a");

    // An empty variable counts as unset.
    let config = GatewayConfig::effective(
        None,
        &Overrides::default(),
        &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]),
    )
    .unwrap();
    assert!(config.exporters.is_empty());
}

#[test]
fn otel_exporter_settings_fill_in_what_exporters_leave_unset() {
    let text = r#"
        [[exporters]]
        name = "plain"
        kind = "grpc"
        endpoint = "grpc://a:4317"
        [[exporters]]
        name = "explicit"
        kind = "http"
        endpoint = "http://b:4318"
        headers = { "x-team" = "core" }
        timeout = "3s"
        compression = "zstd"
        [[exporters]]
        name = "disk"
        kind = "file"
        endpoint = "./archive"
    "#;
    let mut config = parse(text).unwrap();
    config
        .apply_env(&env(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcret, x-tenant = a b",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]))
        .unwrap();
    let plain = &config.exporters[0];
    assert_eq!(plain.headers["api-key"], "s=cret");
    assert_eq!(plain.headers["x-tenant"], "a b");
    assert_eq!(plain.timeout, HumanDuration::millis(2500));
    assert_eq!(plain.compression, CompressionName::None);
    let explicit = &config.exporters[1];
    assert_eq!(explicit.headers.len(), 1);
    assert_eq!(explicit.headers["x-team"], "core");
    assert_eq!(explicit.timeout, HumanDuration::secs(3));
    assert_eq!(explicit.compression, CompressionName::Zstd);
    let file = &config.exporters[2];
    assert!(file.headers.is_empty(), "file exporters send no headers");
    config.validate().unwrap();
}

#[test]
fn otel_certificates_become_exporter_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let ca_text = ca.display().to_string();
    let vars = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca_text),
    ]);
    let config = GatewayConfig::effective(None, &Overrides::default(), &vars).unwrap();
    assert_eq!(
        config.exporters[0].tls.as_ref().unwrap().ca.as_ref(),
        Some(&ca)
    );

    let vars = env(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &ca_text)]);
    let e = GatewayConfig::effective(None, &Overrides::default(), &vars).unwrap_err();
    assert_eq!(e.key, "OTEL_EXPORTER_OTLP_CLIENT_KEY", "{e}");
}

#[test]
fn otel_log_level_sets_the_log_level() {
    let mut config = parse("[log]\nlevel = \"debug\"\n").unwrap();
    config
        .apply_env(&env(&[("OTEL_LOG_LEVEL", "warn")]))
        .unwrap();
    assert_eq!(config.log.level, "warn");
}

#[test]
fn bad_variables_name_the_variable() {
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "lz4"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ("OTEL_LOG_LEVEL", "chatty"),
    ] {
        let e = GatewayConfig::effective(None, &Overrides::default(), &env(&[(var, value)]))
            .expect_err(value);
        assert_eq!(e.key, var, "{value}: {e}");
        assert!(!e.message.starts_with(var), "the key is not repeated: {e}");
    }
}

#[test]
fn precedence_is_defaults_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        "[log]\nlevel = \"debug\"\n[receivers.grpc]\naddr = \"127.0.0.1:5317\"\n",
    )
    .unwrap();
    let vars = env(&[
        ("OTEL_LOG_LEVEL", "error"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k"),
    ]);

    // File over defaults.
    let config = GatewayConfig::effective(Some(&file), &Overrides::default(), &no_env()).unwrap();
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.receivers.grpc.addr, "127.0.0.1:5317");
    assert_eq!(config.receivers.http.addr, "127.0.0.1:4318", "default kept");

    // Environment over file.
    let config = GatewayConfig::effective(Some(&file), &Overrides::default(), &vars).unwrap();
    assert_eq!(config.log.level, "error");
    assert_eq!(config.exporters[0].endpoint, "http://from-env:4318");

    // Flags over environment: --export configures the exporters, so the variable's
    // endpoint adds none beside them, while its headers still reach them.
    let overrides = Overrides {
        grpc_addr: Some("127.0.0.1:6317".into()),
        exports: vec!["grpc://from-flag:4317".into()],
        ..Overrides::default()
    };
    let config = GatewayConfig::effective(Some(&file), &overrides, &vars).unwrap();
    assert_eq!(config.receivers.grpc.addr, "127.0.0.1:6317");
    assert_eq!(config.exporters.len(), 1, "{:?}", config.exporters);
    assert_eq!(config.exporters[0].endpoint, "grpc://from-flag:4317");
    assert_eq!(config.exporters[0].headers["api-key"], "k");
}

#[test]
fn no_file_no_flags_no_variables_is_the_embedded_defaults() {
    // The shape `otlp gateway` passes; an unlikely name so the test does not depend on
    // the environment it runs in.
    let process: &EnvSource = &|name: &str| std::env::var(name).ok();
    assert_eq!(process("OTLP_GATEWAY_TEST_SURELY_UNSET_VARIABLE"), None);
    let config = GatewayConfig::effective(None, &Overrides::default(), &no_env()).unwrap();
    assert_eq!(config, GatewayConfig::default());
}

#[test]
fn every_toml_block_in_the_configuration_guide_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```").expect("unclosed toml block");
        let block = &body[..end];
        // Syntax, types, units and key names; not values such as TLS files, which exist
        // only on the reader's machine.
        let parsed: Result<GatewayConfig, _> = toml::from_str(block);
        if let Err(e) = parsed {
            panic!("a TOML block of docs/configuration.md does not parse: {e}\n{block}");
        }
        blocks += 1;
        rest = &body[end..];
    }
    assert!(blocks >= 10, "found only {blocks} TOML blocks");
}

#[test]
fn group_members_must_share_queue_settings() {
    let text = r#"
[[exporters]]
name = "a"
kind = "grpc"
endpoint = "grpc://127.0.0.1:4317"
[[exporters]]
name = "b"
kind = "grpc"
endpoint = "grpc://127.0.0.1:5317"
signals = ["traces"]
[[groups]]
name = "g"
mode = "failover"
members = ["a", "b"]
"#;
    let err = GatewayConfig::from_toml_str(text).unwrap_err();
    assert_eq!(err.key, "exporters[1].signals");
    assert!(err.message.contains("share one queue"), "{err}");
}
