//! `logpulse-compact`: compacts closed hours of a stopped data dir into
//! compressed segments, applies retention, or checks every file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Parser;
use logpulse_engine::compaction::CompactOptions;
use logpulse_engine::segment::compact::WriteOptions;
use logpulse_tools::compact::{dry_run, run, verify, Plan};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Compacts every closed hour (older than the current UTC hour) of a data
/// dir into one zstd-compressed segment, after dropping hours older than
/// --retention-days. The daemon must be stopped: a data dir whose lock is
/// held is refused and nothing is touched.
///
/// Exit codes: 0 done (or no damage found), 1 error, 2 --verify-only found damage.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// The data dir (daemon stopped).
    #[arg(long, env = "LOGPULSE_DATA_DIR")]
    data_dir: PathBuf,
    /// Drop whole hours older than N days, of every data source (thresholds
    /// hours that hold a row in force are kept).
    #[arg(long)]
    retention_days: Option<u32>,
    /// Check every CRC, decompress every block and decode every row; change
    /// nothing. Names file and offset of every problem.
    #[arg(long, conflicts_with_all = ["dry_run", "retention_days"])]
    verify_only: bool,
    /// Report what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Take this UTC DateTime as the current time (closed hours, retention).
    #[arg(long)]
    now: Option<String>,
    /// zstd level of compact segments (1-22).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Rows per compressed block.
    #[arg(long, default_value_t = 512)]
    block_rows: usize,
    /// Hours compacted in parallel (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// One line per compacted hour on stderr.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    logpulse_tools::init_logging();
    let args = Args::parse();
    match main_result(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logpulse-compact: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_result(args: &Args) -> Result<ExitCode> {
    if args.verify_only {
        let v = verify(&args.data_dir)?;
        for n in &v.notes {
            println!("note: {n}");
        }
        for d in &v.damage {
            println!(
                "DAMAGE: {} at byte offset {}: {}",
                d.path.display(),
                d.offset,
                d.reason
            );
        }
        println!(
            "logpulse-compact: verified {} files, {} rows, {:.1} MB: {}",
            v.files,
            v.rows,
            v.bytes as f64 / 1e6,
            if v.damage.is_empty() {
                "no damage".to_string()
            } else {
                format!("{} problems", v.damage.len())
            }
        );
        return Ok(if v.damage.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let now = match &args.now {
        Some(t) => logpulse_model::time::parse_datetime(t).map_err(|e| anyhow!("--now: {e}"))?,
        None => logpulse_model::time::now(),
    };
    let slow_ms = std::env::var("LP_COMPACT_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let plan = Plan {
        now,
        retention_days: args.retention_days,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        options: CompactOptions {
            write: WriteOptions {
                zstd_level: args.zstd_level,
            },
            block_rows: args.block_rows.max(1),
            step_pause: Duration::from_millis(slow_ms),
        },
    };
    let report = if args.dry_run {
        dry_run(&args.data_dir, &plan)?
    } else {
        run(&args.data_dir, &plan, args.verbose)?
    };
    let what = if args.dry_run { " (dry run)" } else { "" };
    println!("logpulse-compact: {}{what}", args.data_dir.display());
    for line in report.to_string().lines() {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}
