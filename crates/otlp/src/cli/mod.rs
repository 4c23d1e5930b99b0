//! Command line parsing and dispatch.

mod check_config;
mod convert;
mod gateway;
mod send;

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
    /// Run the telemetry gateway (embedded defaults without a configuration file).
    Gateway(gateway::GatewayArgs),
    /// Generate realistic traces, metrics or logs and send them at a given rate.
    Send(send::SendArgs),
    /// Check a gateway configuration file and print what it sets up.
    CheckConfig(check_config::CheckConfigArgs),
    /// Convert an OTLP Export*ServiceRequest between binary protobuf and OTLP/JSON.
    Convert(convert::ConvertArgs),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gateway(args) => gateway::run(args),
        Command::Send(args) => send::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Convert(args) => convert::run(args),
    }
}
