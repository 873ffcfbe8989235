//! `logpulse-replay`: loads NDJSON files into a stopped data dir, or into a
//! running daemon over HTTP, or copies a data dir's rows into another one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use logpulse_engine::{DataSource, Engine, EngineConfig};
use logpulse_tools::input::Source;
use logpulse_tools::replay::{datadir, http, offline, Progress, Summary};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Replays NDJSON rows with the validation and quarantine of the Events API.
///
/// Offline:   logpulse-replay --data-dir DIR --datasource NAME FILE...
/// Daemon:    logpulse-replay --url URL --token TOKEN --datasource NAME FILE...
/// Data dir:  logpulse-replay --data-dir DIR --from-data-dir SRC
///
/// FILE is an NDJSON file, a `.gz` of one, or `-` for stdin. Offline modes
/// need the daemon stopped (they take the data dir's lock).
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Data dir to load into (daemon stopped).
    #[arg(long, env = "LOGPULSE_DATA_DIR", conflicts_with = "url")]
    data_dir: Option<PathBuf>,
    /// Base URL of a running daemon, e.g. http://127.0.0.1:7181.
    #[arg(long)]
    url: Option<String>,
    /// Token with DATASOURCES:APPEND on the data source (with --url).
    #[arg(long, env = "LOGPULSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// system_logs or log_anomaly_thresholds.
    #[arg(long)]
    datasource: Option<String>,
    /// Copy the system_logs and log_anomaly_thresholds rows of this (stopped)
    /// data dir into --data-dir, in their ingestion order.
    #[arg(long, conflicts_with_all = ["url", "datasource", "files"])]
    from_data_dir: Option<PathBuf>,
    /// Lines per batch (per append, or per POST with --url).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_rows: u64,
    /// Skip the first N lines of the inputs (taken together, in order,
    /// counting from 0, blank lines included): resume an interrupted replay
    /// with the number it printed.
    #[arg(long, default_value_t = 0)]
    from_line: u64,
    /// Parser threads for offline replay (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Attempts per batch over HTTP when no answer arrives (connection
    /// errors, timeouts) or the daemon answers 429/503.
    #[arg(long, default_value_t = 20)]
    retries: u32,
    /// Value of c__import_id on quarantine rows (offline).
    #[arg(long)]
    import_id: Option<String>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    quiet: bool,
    /// NDJSON inputs: files, .gz files, or - for stdin.
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    logpulse_tools::init_logging();
    let args = Args::parse();
    match run(&args) {
        Ok(summary) => {
            println!("logpulse-replay: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("logpulse-replay: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Summary> {
    if let Some(src) = &args.from_data_dir {
        let Some(dst) = &args.data_dir else {
            bail!("--from-data-dir needs --data-dir (the destination)");
        };
        return from_data_dir(args, src, dst);
    }
    let ds = datasource(args)?;
    if args.files.is_empty() {
        bail!("no input: name NDJSON files, .gz files, or - for stdin");
    }
    let sources: Vec<Source> = args.files.iter().map(|f| Source::parse(f)).collect();
    let total = sources.iter().map(Source::size).sum::<Option<u64>>();
    let progress = Progress::new(total, !args.quiet);
    let res = if let Some(url) = &args.url {
        let Some(token) = &args.token else {
            bail!("--url needs --token (or LOGPULSE_TOKEN)");
        };
        let opts = http::HttpOptions {
            url: url.clone(),
            token: token.clone(),
            datasource: ds,
            lines_per_batch: args.batch_rows as usize,
            from_line: args.from_line,
            attempts: args.retries.max(1),
            ..Default::default()
        };
        http::replay_files(&sources, &opts, &progress)
    } else {
        let Some(dir) = &args.data_dir else {
            bail!("name a target: --data-dir DIR (daemon stopped) or --url URL");
        };
        offline_files(args, dir, ds, &sources, &progress)
    };
    progress.finish();
    res
}

fn datasource(args: &Args) -> Result<DataSource> {
    let Some(name) = &args.datasource else {
        bail!("--datasource is required (system_logs or log_anomaly_thresholds)");
    };
    match DataSource::from_name(name) {
        Some(ds) if !ds.is_quarantine() => Ok(ds),
        Some(_) => bail!("{name} is a quarantine data source and takes no appends"),
        None => bail!("unknown data source {name:?} (system_logs or log_anomaly_thresholds)"),
    }
}

/// Opens a data dir for an offline replay. Rows are made durable once, by
/// the final sync of `Engine::close` (the replay succeeds only after it), so
/// the periodic sync is spaced out: on the append path it would only stall
/// the writer.
fn open_engine(dir: &std::path::Path) -> Result<Engine> {
    let mut config = EngineConfig::new(dir);
    config.sync_interval_ms = 600_000;
    Engine::open(config).with_context(|| format!("cannot open data dir {}", dir.display()))
}

fn offline_files(
    args: &Args,
    dir: &std::path::Path,
    ds: DataSource,
    sources: &[Source],
    progress: &Progress,
) -> Result<Summary> {
    let engine = open_engine(dir)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let opts = offline::OfflineOptions {
        datasource: ds,
        lines_per_batch: args.batch_rows as usize,
        from_line: args.from_line,
        threads,
        import_id: args
            .import_id
            .clone()
            .unwrap_or_else(|| format!("replay-{}", std::process::id())),
    };
    let res = offline::replay_files(&engine, sources, &opts, progress);
    let closed = engine.close().context("final sync of the data dir failed");
    let summary = res?;
    closed?;
    Ok(summary)
}

fn from_data_dir(args: &Args, src: &std::path::Path, dst: &std::path::Path) -> Result<Summary> {
    if !src.is_dir() {
        bail!("source data dir {} does not exist", src.display());
    }
    let from = open_engine(src)?;
    let to = open_engine(dst)?;
    let progress = Progress::new(None, !args.quiet);
    let res = datadir::replay_data_dir(&from, &to, args.batch_rows as usize, &progress);
    progress.finish();
    let closed = to.close().context("final sync of the data dir failed");
    let summary = res?;
    closed?;
    Ok(summary)
}
