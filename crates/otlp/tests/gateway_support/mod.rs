//! Harness for crates/otlp/tests/gateway_e2e.rs: `otlp gateway` processes on real sockets
//! and temporary directories ([`process`]), a small HTTP/1.1 client for the admin and
//! OTLP/HTTP listeners ([`http`]), a reader of the JSONL file sink ([`delivered`]),
//! requests with known span ids sent with our gRPC exporter ([`spans`]), and the Python
//! SDK peers ([`python`]).
//!
//! Every wait here is bounded (counted polls or `tokio::time::timeout`), and every
//! process started here is killed when its handle is dropped, so a failing test leaves
//! nothing running.
#![allow(dead_code)] // not every helper is used by every test

pub(crate) mod delivered;
pub(crate) mod http;
pub(crate) mod process;
pub(crate) mod python;
pub(crate) mod spans;

use std::net::{SocketAddr, TcpListener};

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for
/// an upstream that must come back on the same address after a restart, or for an
/// address that nothing listens on.
pub(crate) fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
}

/// Every file under `dir` with its size, one per line (for failure messages).
pub(crate) fn dir_listing(dir: &std::path::Path) -> String {
    let mut lines = Vec::new();
    let mut stack = vec![dir.to_owned()];
    // Bounded: a test's data directory holds a few dozen files.
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => lines.push(format!("{} {}", m.len(), path.display())),
                Err(_) => {}
            }
        }
        if lines.len() > 200 {
            break;
        }
    }
    lines.sort();
    lines.join("\n")
}
