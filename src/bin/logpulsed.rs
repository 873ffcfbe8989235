//! `logpulsed`: see `logpulsed --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use logpulse_server::config::{Args, Config};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match Config::resolve(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logpulsed: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lp-http")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("logpulsed: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(logpulse_server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("logpulsed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
