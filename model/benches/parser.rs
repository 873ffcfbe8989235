//! The Events API row parser alone (`ingest::parse_body`), one thread: rows
//! per CPU-second of that thread (rows/s per core) and MB/s of NDJSON, over
//! bodies of 5,000 lines as `shared/bench/load.py` sends them. CPU time is
//! the thread's on-CPU nanoseconds (`/proc/thread-self/schedstat`), so a
//! busy shared machine changes it less than wall time (both are printed).
//!
//!   cargo bench -p logpulse-model --bench parser
//!   LP_PARSER_DATA=/tmp/lp-bench/system_logs-....ndjson cargo bench -p logpulse-model --bench parser
//!
//! Data: `LP_PARSER_DATA` (gen.py's NDJSON; at most `LP_PARSER_ROWS`,
//! default 1,000,000 rows of it), else rows made here in gen.py's shape
//! (same columns, metadata a JSON object serialised into a string).

use std::time::Instant;

use logpulse_model::ingest::{parse_body, Import};
use logpulse_model::DataSource;

fn synthetic(n: usize) -> Vec<u8> {
    let services = [
        "api-gateway",
        "auth-service",
        "user-service",
        "payment-service",
    ];
    let severities = ["DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"];
    let mut out = Vec::with_capacity(n * 300);
    for i in 0..n {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let line = format!(
            concat!(
                r#"{{"timestamp":"2024-06-01 {:02}:{:02}:{:02}","server_id":"srv-eu-central-1-{:02}","#,
                r#""service":"{}","severity":"{}","message":"retrying call to payment-provider attempt={} after {}ms backoff","#,
                r#""error_code":"W_SLOW_REQUEST","resource_id":"session-{:08x}","#,
                r#""metadata":"{{\"trace_id\":\"{:012x}\",\"latency_ms\":{},\"region\":\"us-east-1\"}}"}}"#,
                "\n"
            ),
            h,
            m,
            s,
            i % 50,
            services[i % services.len()],
            severities[i % severities.len()],
            i % 10,
            i % 3000,
            i.wrapping_mul(2_654_435_761) as u32,
            (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16,
            i % 500,
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Nanoseconds this thread has been on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let max_rows: usize = std::env::var("LP_PARSER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (data, source) = match std::env::var("LP_PARSER_DATA") {
        Ok(p) => (std::fs::read(&p).expect("LP_PARSER_DATA"), p),
        Err(_) => (synthetic(max_rows.min(200_000)), "synthetic".to_string()),
    };
    let lines: Vec<&[u8]> = data
        .split_inclusive(|b| *b == b'\n')
        .take(max_rows)
        .collect();
    let bodies: Vec<Vec<u8>> = lines.chunks(5000).map(|c| c.concat()).collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let import = Import {
        id: "bench",
        now: 1_700_000_000,
    };
    println!(
        "parser benchmark: {} rows, {:.1} MB, from {source}",
        lines.len(),
        bytes as f64 / 1e6
    );
    let mut best = f64::MAX;
    for run in 0..5 {
        let t = Instant::now();
        let c0 = cpu_ns();
        let mut ok = 0;
        for b in &bodies {
            let p = parse_body(DataSource::SystemLogs, b, &import);
            ok += p.successful;
            assert_eq!(p.quarantined, 0, "benchmark rows must be valid");
        }
        let wall = t.elapsed().as_secs_f64();
        let s = (cpu_ns() - c0) as f64 / 1e9;
        assert_eq!(ok as usize, lines.len());
        best = best.min(s);
        println!(
            "  run {run}: {s:.3} CPU-s ({wall:.3} s wall), {:.2} M rows/s per core, {:.0} MB/s",
            lines.len() as f64 / s / 1e6,
            bytes as f64 / s / 1e6
        );
    }
    println!(
        "parse_body, one core, best of 5: {:.2} M rows/s per core, {:.0} MB/s per core",
        lines.len() as f64 / best / 1e6,
        bytes as f64 / best / 1e6
    );
}
