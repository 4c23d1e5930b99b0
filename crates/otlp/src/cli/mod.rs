//! Command line parsing and dispatch.

mod convert;

use clap::{Parser, Subcommand};

/// OpenTelemetry OTLP toolkit.
#[derive(Debug, Parser)]
#[command(name = "otlp", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Convert an OTLP Export*ServiceRequest between binary protobuf and OTLP/JSON.
    Convert(convert::ConvertArgs),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Convert(args) => convert::run(args),
    }
}
