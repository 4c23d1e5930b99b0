//! `otlp check-config FILE`: parse and validate a gateway configuration, then say in a
//! few lines what it sets up, or name the key of the first problem.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use otlp_gateway::config::{
    ExporterKind, GatewayConfig, GroupMode, Overrides, QueueConfig, QueueKind,
};

#[derive(Debug, Args)]
pub(crate) struct CheckConfigArgs {
    /// The TOML configuration file to check.
    file: PathBuf,
    /// Also apply the OTEL_* variables of this environment (OTEL_EXPORTER_OTLP_*,
    /// OTEL_LOG_LEVEL), as `otlp gateway` does.
    #[arg(long)]
    with_env: bool,
}

pub(crate) fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let config = check(&args)?;
    println!("{}", summary(&args.file.display().to_string(), &config));
    Ok(())
}

fn check(args: &CheckConfigArgs) -> anyhow::Result<GatewayConfig> {
    let result = if args.with_env {
        let env = |name: &str| std::env::var(name).ok();
        GatewayConfig::effective(Some(&args.file), &Overrides::default(), &env)
    } else {
        GatewayConfig::load(&args.file)
    };
    result.map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))
}

/// `ok: FILE: ...` and one line each for listeners, exporters, routes and queues.
fn summary(file: &str, config: &GatewayConfig) -> String {
    let mut out = String::new();
    let listeners: Vec<String> = [
        ("grpc", &config.receivers.grpc),
        ("http", &config.receivers.http),
    ]
    .into_iter()
    .filter(|(_, l)| l.enabled)
    .map(|(name, l)| {
        let tls = if l.tls.is_some() { " (TLS)" } else { "" };
        format!("{name} {}{tls}", l.addr)
    })
    .chain(
        config
            .admin
            .enabled
            .then(|| format!("admin {}", config.admin.addr)),
    )
    .collect();

    let grouped: Vec<&str> = config
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(String::as_str))
        .collect();
    let mut routes: Vec<String> = config
        .groups
        .iter()
        .map(|g| {
            let mode = match g.mode {
                GroupMode::Failover => "failover",
                GroupMode::LoadBalance => "load_balance",
            };
            format!("{} ({mode}: {})", g.name, g.members.join(", "))
        })
        .collect();
    routes.extend(
        config
            .exporters
            .iter()
            .filter(|e| !grouped.contains(&e.name.as_str()))
            .map(|e| match &e.queue {
                Some(q) => format!("{} [{}]", e.name, queue_text(q)),
                None => e.name.clone(),
            }),
    );
    let exporters: Vec<String> = config
        .exporters
        .iter()
        .map(|e| {
            let kind = match e.kind {
                ExporterKind::Grpc => "grpc",
                ExporterKind::Http => "http",
                ExporterKind::File => "file",
            };
            let target = if e.endpoint.is_empty() {
                config.data_dir.display().to_string()
            } else {
                e.endpoint.clone()
            };
            let signals: Vec<String> = e.signals.iter().map(|s| s.signal().to_string()).collect();
            format!("{} ({kind} {target}; {})", e.name, signals.join(", "))
        })
        .collect();

    let _ = writeln!(
        out,
        "ok: {file}: {} listener{}, {} exporter{}, {} route{}, {} queue",
        listeners.len(),
        plural(listeners.len()),
        exporters.len(),
        plural(exporters.len()),
        routes.len().max(1),
        plural(routes.len().max(1)),
        kind_text(config.queue.kind),
    );
    let _ = writeln!(out, "  listeners: {}", listeners.join(", "));
    if exporters.is_empty() {
        let _ = writeln!(
            out,
            "  exporters: none: data is written to {}/{{traces,metrics,logs}}.jsonl",
            config.data_dir.display()
        );
    } else {
        let _ = writeln!(out, "  exporters: {}", exporters.join(", "));
        let _ = writeln!(out, "  routes:    {}", routes.join(", "));
    }
    let _ = write!(out, "  queue:     {}", queue_text(&config.queue));
    if config.queue.kind == QueueKind::Disk {
        let _ = write!(out, " under {}/queue", config.data_dir.display());
    }
    out
}

fn kind_text(kind: QueueKind) -> &'static str {
    match kind {
        QueueKind::Disk => "disk",
        QueueKind::Memory => "memory",
    }
}

fn queue_text(q: &QueueConfig) -> String {
    match q.kind {
        QueueKind::Memory => format!("memory, {}", q.max_bytes),
        QueueKind::Disk => format!(
            "disk, {}, fsync {}",
            q.max_bytes,
            match q.fsync {
                otlp_gateway::config::FsyncPolicy::Always => "always".to_owned(),
                otlp_gateway::config::FsyncPolicy::Interval =>
                    format!("every {}", q.fsync_interval),
                otlp_gateway::config::FsyncPolicy::Never => "never".to_owned(),
            }
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: PathBuf) -> CheckConfigArgs {
        CheckConfigArgs {
            file,
            with_env: false,
        }
    }

    #[test]
    fn a_valid_file_is_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            r#"
            [receivers.http]
            enabled = false
            [[exporters]]
            name = "a"
            kind = "grpc"
            endpoint = "grpc://a:4317"
            [[exporters]]
            name = "b"
            kind = "grpc"
            endpoint = "grpc://b:4317"
            [[exporters]]
            name = "c"
            kind = "http"
            endpoint = "https://c:4318"
            signals = ["logs"]
            queue = { kind = "memory", max_bytes = "128MiB" }
            [[groups]]
            name = "ab"
            mode = "failover"
            members = ["a", "b"]
            "#,
        )
        .unwrap();
        let config = check(&args(file)).unwrap();
        let text = summary("gateway.toml", &config);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "ok: gateway.toml: 2 listeners, 3 exporters, 2 routes, disk queue"
        );
        assert!(
            text.contains("grpc 127.0.0.1:4317, admin 127.0.0.1:8888"),
            "{text}"
        );
        assert!(text.contains("c (http https://c:4318; logs)"), "{text}");
        assert!(
            text.contains("ab (failover: a, b), c [memory, 128MiB]"),
            "{text}"
        );
        assert!(
            text.contains("queue:     disk, 1GiB, fsync always"),
            "{text}"
        );
    }

    #[test]
    fn no_exporters_means_the_file_sink() {
        let text = summary("x.toml", &GatewayConfig::default());
        assert!(
            text.starts_with("ok: x.toml: 3 listeners, 0 exporters, 1 route"),
            "{text}"
        );
        assert!(
            text.contains("./otlp-data/{traces,metrics,logs}.jsonl"),
            "{text}"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[[exporters]]\nname = \"a\"\nkind = \"grpc\"\nendpoint = \"grpc://a:1\"\ncompression = \"lz4\"\n").unwrap();
        let message = check(&args(file.clone())).unwrap_err().to_string();
        assert!(
            message.starts_with(&file.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("exporters[0].compression: unknown variant `lz4`"),
            "{message}"
        );
        assert!(message.contains("line 5"), "{message}");

        let missing = dir.path().join("missing.toml");
        let message = check(&args(missing)).unwrap_err().to_string();
        assert!(message.contains("cannot read"), "{message}");
    }
}
