//! Helpers shared by the tools' integration tests: generated NDJSON, the
//! Events API path of appending it, running the real binaries, and a
//! comparable snapshot of every query answer.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use logpulse_engine::*;
use logpulse_model::ingest::{parse_body, Import};
use logpulse_model::time;

/// 2023-06-01 12:00:00 UTC.
pub const BASE: u32 = 1_685_620_800;

pub const SERVICES: [&str; 4] = ["auth", "db", "api-gateway", "büro"];
pub const SEVERITIES: [&str; 4] = ["error", "WARN", "Info", "critical"];

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `n` NDJSON lines of `system_logs` over `hours` hours from `start`: mostly
/// ascending time with jitter, some late rows, equal timestamps, aliases,
/// escapes, JSON metadata, blank lines and a few invalid lines (which the
/// API quarantines).
pub fn log_lines(n: usize, start: u32, hours: u32, seed: u64) -> Vec<String> {
    let mut r = Rng(seed | 1);
    let span = hours * 3600;
    (0..n)
        .map(|i| {
            let mut ts = start + (i as u64 * span as u64 / n as u64) as u32;
            ts = ts.saturating_sub(r.below(90) as u32);
            if r.below(40) == 0 {
                ts = start + r.below(span as u64) as u32; // late or early row
            }
            let svc = SERVICES[r.below(4) as usize];
            let sev = SEVERITIES[(r.below(7) % 4) as usize];
            match r.below(60) {
                0 => format!("{{\"timestamp\":\"{ts}\",\"service\":\"{svc}\"}}"),
                1 => "not json at all".to_string(),
                2 => String::new(),
                3 => format!(
                    "{{\"@timestamp\":{ts},\"app\":\"{svc}\",\"level\":\"{sev}\",\"msg\":\"alias \\\"quoted\\\" {i}\",\"host\":\"h{}\"}}",
                    r.below(5)
                ),
                _ => format!(
                    "{{\"timestamp\":\"{}\",\"server_id\":\"srv-{}\",\"service\":\"{svc}\",\"severity\":\"{sev}\",\"message\":\"request {i} took {}ms\",\"error_code\":\"{}\",\"resource_id\":\"r-{:08x}\",\"metadata\":{}}}",
                    time::format_datetime(ts),
                    r.below(7),
                    r.below(3000),
                    if r.below(3) == 0 { "E42" } else { "" },
                    r.next() as u32,
                    if r.below(2) == 0 {
                        format!("{{\"trace\":\"{:x}\",\"n\":[1,2]}}", r.next())
                    } else {
                        "\"\"".to_string()
                    }
                ),
            }
        })
        .collect()
}

/// Threshold lines, some superseded, one switched off, one invalid.
pub fn threshold_lines(start: u32) -> Vec<String> {
    let mut out = Vec::new();
    for (i, svc) in SERVICES.iter().enumerate() {
        for (j, sev) in SEVERITIES.iter().enumerate() {
            let t = 1 + (i + j) % 4;
            out.push(format!(
                "{{\"service\":\"{svc}\",\"severity\":\"{sev}\",\"threshold_per_minute\":{t},\"updated_at\":{}}}",
                start - 86_400 + (i * 7 + j) as u32 * 3600
            ));
        }
    }
    out.push(format!(
        "{{\"service\":\"db\",\"severity\":\"error\",\"threshold_per_minute\":0.5,\"updated_at\":{start}}}"
    ));
    out.push(format!(
        "{{\"service\":\"auth\",\"severity\":\"WARN\",\"threshold_per_minute\":1,\"active\":0,\"updated_at\":{start}}}"
    ));
    out.push("{\"service\":\"x\",\"severity\":\"e\",\"threshold_per_minute\":-1}".to_string());
    out
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

/// Appends `lines` as the Events API does: `parse_body` on batches of
/// `batch` lines, then `Engine::append`.
pub fn append_like_api(e: &Engine, ds: DataSource, lines: &[String], batch: usize) {
    for chunk in lines.chunks(batch) {
        let mut body = chunk.join("\n");
        body.push('\n');
        let parsed = parse_body(
            ds,
            body.as_bytes(),
            &Import {
                id: "test",
                now: BASE,
            },
        );
        e.append(&parsed.rows, Durability::Visible).unwrap();
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(EngineConfig::new(dir)).expect("open engine")
}

pub fn replay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_logpulse-replay")
}

pub fn compact_bin() -> &'static str {
    env!("CARGO_BIN_EXE_logpulse-compact")
}

/// Runs a tool binary; panics with its output unless it exits with `code`.
pub fn run(bin: &str, args: &[&str], code: i32) -> Output {
    let out = Command::new(bin).args(args).output().expect("run tool");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{bin} {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every answer a client can get, as text: recent_logs, error_distribution
/// and log_anomalies over many windows and filters, row counts, minute
/// counts, thresholds in force. Two stores with equal snapshots answer every
/// query alike.
pub fn snapshot(e: &Engine, start: u32, hours: u32) -> String {
    let mut out = String::new();
    let end = start + hours * 3600;
    let mut windows = vec![(None, None), (Some(start), Some(end))];
    for k in 0..hours * 2 {
        let a = start + k * 1800 + (k * 97) % 600;
        windows.push((Some(a), Some(a + 2400 + (k * 31) % 1000)));
    }
    let services: Vec<Option<String>> = std::iter::once(None)
        .chain(SERVICES.iter().map(|s| Some(s.to_string())))
        .collect();
    let severities = [None, Some("ERROR".to_string()), Some("WARN".to_string())];
    for (w, (s, t)) in windows.iter().enumerate() {
        for (i, svc) in services.iter().enumerate() {
            for (j, sev) in severities.iter().enumerate() {
                if (w + i + j) % 3 != 0 && w > 1 {
                    continue;
                }
                let f = LogFilter {
                    start: *s,
                    end: *t,
                    service: svc.clone(),
                    severity: sev.clone(),
                };
                let r = e.recent_logs(&f, 1 + (w * 7 + i) % 60).unwrap();
                writeln!(out, "recent {f:?}: {} {:?}", r.rows_before_limit, r.rows).unwrap();
                let d = e.error_distribution(&f, 100).unwrap();
                writeln!(out, "dist {f:?}: {} {:?}", d.rows_before_limit, d.rows).unwrap();
            }
        }
        let a = e
            .log_anomalies(&AnomalyQuery {
                end: t.unwrap_or(end),
                window_minutes: 30 + (w as u32 * 13) % 600,
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        writeln!(out, "anomalies {w}: {} {:?}", a.rows_before_limit, a.rows).unwrap();
    }
    for ds in DataSource::ALL {
        writeln!(out, "{}: {} rows", ds.name(), e.datasource_stats(ds).rows).unwrap();
    }
    let mut minutes: Vec<_> = e.minute_counts().into_iter().collect();
    minutes.sort();
    writeln!(out, "minutes: {minutes:?}").unwrap();
    writeln!(out, "thresholds: {:?}", e.thresholds()).unwrap();
    out
}

/// Rows with their seqs: `system_logs`, then `log_anomaly_thresholds`.
pub type AllRows = (Vec<(u64, LogRow<'static>)>, Vec<(u64, ThresholdRow)>);

/// Every `system_logs` row with its seq, and every threshold row with its seq.
pub fn all_rows(e: &Engine) -> AllRows {
    let mut logs = Vec::new();
    e.scan_logs(|seq, r| logs.push((seq, r.into_owned())))
        .unwrap();
    (logs, e.scan_thresholds().unwrap())
}

/// Panics naming the first differing line of two snapshots.
pub fn assert_same(a: &str, b: &str, what: &str) {
    if a == b {
        return;
    }
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(x, y, "{what}: snapshots differ at line {i}");
    }
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "{what}: snapshot lengths differ"
    );
}

/// Files of a directory tree with their sizes, for "nothing changed" checks.
pub fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.metadata().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Every segment file of a data dir with its bytes (the sled index and the
/// lock file left out).
pub fn segment_contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|(p, _)| {
            let rel = p.strip_prefix(dir).unwrap();
            !rel.starts_with("index") && !rel.ends_with("LOCK")
        })
        .map(|(p, _)| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// The index on disk agrees with what the segments imply (no rebuild needed).
pub fn index_agrees(dir: &Path) -> bool {
    logpulse_engine::recovery::check_index(dir).unwrap()
}
