//! `otlp convert`: protobuf <-> OTLP/JSON for each signal.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use otlp_core::codec::{self, Message};
use otlp_core::compression::Compression;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Encoding, Limits, OtlpRequest, Signal};

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// Which signal the file holds.
    #[arg(long, value_parser = parse_signal)]
    signal: Signal,
    /// Input format; guessed from the input file's extension when omitted
    /// (`.json` is OTLP/JSON, `.pb`, `.bin`, `.binpb`, `.protobuf` are protobuf).
    #[arg(long, value_enum)]
    from: Option<Format>,
    /// Output format; guessed from the output file's extension when omitted
    /// (OTLP/JSON when writing to standard output).
    #[arg(long, value_enum)]
    to: Option<Format>,
    /// Input file, or `-` for standard input. A gzip or zstd compressed input is
    /// recognised by its magic bytes and decompressed (up to the 64 MiB body limit).
    input: PathBuf,
    /// Output file, or `-` for standard output.
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Binary protobuf.
    Proto,
    /// OTLP/JSON.
    Json,
}

impl From<Format> for Encoding {
    fn from(f: Format) -> Encoding {
        match f {
            Format::Proto => Encoding::Protobuf,
            Format::Json => Encoding::Json,
        }
    }
}

fn parse_signal(s: &str) -> Result<Signal, String> {
    s.parse()
        .map_err(|e: otlp_core::signal::UnknownSignal| e.to_string())
}

fn guess(path: &Path, which: &str) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => Ok(Format::Json),
        Some("pb" | "bin" | "binpb" | "protobuf") => Ok(Format::Proto),
        _ => bail!(
            "cannot tell the {which} format from {:?}: pass --{which} proto|json",
            path.display()
        ),
    }
}

pub(crate) fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let from = match args.from {
        Some(f) => f,
        None if args.input == Path::new("-") => {
            bail!("cannot tell the format of standard input: pass --from proto|json")
        }
        None => guess(&args.input, "from")?,
    };
    let to = match args.to {
        Some(f) => f,
        None if args.output == Path::new("-") => Format::Json,
        None => guess(&args.output, "to")?,
    };
    let input = read_input(&args.input)?;
    let (out, items, resources) = match args.signal {
        Signal::Traces => convert::<ExportTraceServiceRequest>(&input, from, to, &args.input)?,
        Signal::Metrics => convert::<ExportMetricsServiceRequest>(&input, from, to, &args.input)?,
        Signal::Logs => convert::<ExportLogsServiceRequest>(&input, from, to, &args.input)?,
    };
    write_output(&args.output, &out)?;
    eprintln!(
        "otlp convert: {items} {} in {resources} resource(s): {} {} bytes -> {} {} bytes",
        args.signal.item_name(),
        Encoding::from(from),
        input.len(),
        Encoding::from(to),
        out.len(),
    );
    Ok(())
}

fn convert<T: OtlpRequest + Message>(
    input: &[u8],
    from: Format,
    to: Format,
    path: &Path,
) -> anyhow::Result<(Vec<u8>, u64, usize)> {
    let request: T = codec::decode(from.into(), input).with_context(|| {
        format!(
            "{} is not a valid {} {} request",
            display(path),
            Encoding::from(from),
            T::SIGNAL
        )
    })?;
    let mut out = codec::encode(to.into(), &request).to_vec();
    if to == Format::Json {
        out.push(b'\n');
    }
    Ok((out, request.item_count(), request.resource_count()))
}

fn display(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        format!("{:?}", path.display().to_string())
    }
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let limit = Limits::default().max_body_bytes();
    let raw = if path == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        buf
    } else {
        let len = fs::metadata(path)
            .with_context(|| format!("reading {}", display(path)))?
            .len();
        if len > limit as u64 {
            bail!(
                "{} is {len} bytes, over the {limit}-byte limit",
                display(path)
            );
        }
        fs::read(path).with_context(|| format!("reading {}", display(path)))?
    };
    let compression = match raw.as_slice() {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => {
            if raw.len() > limit {
                bail!("{} is over the {limit}-byte limit", display(path));
            }
            return Ok(raw);
        }
    };
    let body = otlp_core::compression::decompress(compression, &raw, limit)
        .with_context(|| format!("decompressing {}", display(path)))?;
    Ok(body.to_vec())
}

fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut out = io::stdout().lock();
        out.write_all(bytes).context("writing standard output")?;
        out.flush().context("writing standard output")?;
        return Ok(());
    }
    // Write to a sibling temp file and rename, so a failed run never leaves half a file.
    let tmp = path.with_extension("otlp-convert.tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", display(&tmp)))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", display(path)))?;
    Ok(())
}
