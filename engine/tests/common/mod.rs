//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use logpulse_engine::segment::format::{read_frame, FrameRead, HEADER_LEN, SYNCED_LEN_OFFSET};
use logpulse_engine::*;

/// 2023-06-01 12:00:00 UTC.
pub const BASE: u32 = 1_685_620_800;

pub fn log(ts: u32, service: &str, severity: &str, message: String) -> Row<'static> {
    Row::Log(LogRow {
        timestamp: ts,
        service: Cow::Owned(service.into()),
        severity: Cow::Owned(severity.into()),
        message: Cow::Owned(message),
        server_id: Cow::Borrowed("srv-1"),
        ..Default::default()
    })
}

pub fn threshold(service: &str, severity: &str, per_minute: f64, updated_at: u32) -> Row<'static> {
    Row::Threshold(ThresholdRow {
        service: service.into(),
        severity: severity.into(),
        threshold_per_minute: per_minute,
        active: 1,
        updated_at,
    })
}

/// `n` rows tagged `tag`, spread over `hours` hours from `start`.
pub fn batch(tag: &str, n: u32, start: u32, hours: u32) -> Vec<Row<'static>> {
    let services = ["auth", "db", "api"];
    let severities = ["ERROR", "WARN", "INFO"];
    (0..n)
        .map(|i| {
            log(
                start + (i * 7919) % (hours * 3600),
                services[(i % 3) as usize],
                severities[(i / 3 % 3) as usize],
                format!("{tag}-{i}"),
            )
        })
        .collect()
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(EngineConfig::new(dir)).expect("open engine")
}

/// Segment files of a data source, oldest first (names sort by hour, file no).
pub fn seg_files(dir: &Path, ds: DataSource) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join(ds.name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// Where the valid frames of a segment file end.
pub fn valid_end(path: &Path) -> usize {
    let data = fs::read(path).unwrap();
    let mut off = HEADER_LEN;
    while let FrameRead::Frame(f) = read_frame(&data, off) {
        off += f.total_len();
    }
    off
}

/// The `synced_len` a segment header claims.
pub fn synced_len(path: &Path) -> u64 {
    let data = fs::read(path).unwrap();
    u64::from_le_bytes(
        data[SYNCED_LEN_OFFSET..SYNCED_LEN_OFFSET + 8]
            .try_into()
            .unwrap(),
    )
}

/// Writes `bytes` at `offset` of a file (extending it if needed).
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Every `system_logs` row in seq order, with its seq.
pub fn scan(e: &Engine) -> Vec<(u64, LogRow<'static>)> {
    let mut v = Vec::new();
    e.scan_logs(|seq, r| v.push((seq, r.into_owned()))).unwrap();
    v
}

/// Minute counts recounted from the rows themselves.
pub fn recount_minutes(rows: &[(u64, LogRow<'static>)]) -> HashMap<(u32, String, String), u32> {
    let mut m = HashMap::new();
    for (_, r) in rows {
        *m.entry((
            r.timestamp / 60,
            r.service.to_string(),
            r.severity.to_string(),
        ))
        .or_default() += 1;
    }
    m
}

/// Checks that the engine's counters agree with a recount of its rows and
/// of the segment files on disk.
pub fn assert_counts_recount(e: &Engine, dir: &Path) {
    let rows = scan(e);
    assert_eq!(e.minute_counts(), recount_minutes(&rows), "minute counts");
    let files = seg_files(dir, DataSource::SystemLogs);
    let stats = e.datasource_stats(DataSource::SystemLogs);
    assert_eq!(stats.rows, rows.len() as u64, "row count");
    assert_eq!(stats.segments, files.len() as u64, "segment count");
    let bytes: u64 = files.iter().map(|f| valid_end(f) as u64).sum();
    assert_eq!(stats.bytes, bytes, "bytes");
}

/// A snapshot of every query answer that matters, for before/after checks.
#[derive(Debug, PartialEq)]
pub struct Answers {
    pub recent: Vec<(Vec<LogRow<'static>>, u64)>,
    pub distribution: Vec<(Vec<DistributionRow>, u64)>,
    pub anomalies: Vec<(Vec<AnomalyRow>, u64)>,
    pub minutes: HashMap<(u32, String, String), u32>,
    pub thresholds: Vec<ThresholdRow>,
    pub stats: TableStats,
}

pub fn answers(e: &Engine, start: u32, hours: u32) -> Answers {
    let mut filters = vec![LogFilter::default()];
    for h in 0..hours {
        let s = start + h * 3600;
        filters.push(LogFilter {
            start: Some(s + 1234),
            end: Some(s + 3600 + 77),
            service: Some("auth".into()),
            ..Default::default()
        });
        filters.push(LogFilter {
            start: Some(s),
            end: Some(s + 3600),
            severity: Some("ERROR".into()),
            ..Default::default()
        });
    }
    let recent = filters
        .iter()
        .map(|f| {
            let r = e.recent_logs(f, 50).unwrap();
            (r.rows, r.rows_before_limit)
        })
        .collect();
    let distribution = filters
        .iter()
        .map(|f| {
            let d = e.error_distribution(f, 100).unwrap();
            (d.rows, d.rows_before_limit)
        })
        .collect();
    let anomalies = (0..=hours)
        .map(|h| {
            let a = e
                .log_anomalies(&AnomalyQuery {
                    end: start + h * 3600 + 1800,
                    window_minutes: 90,
                    limit: 1000,
                    ..Default::default()
                })
                .unwrap();
            (a.rows, a.rows_before_limit)
        })
        .collect();
    Answers {
        recent,
        distribution,
        anomalies,
        minutes: e.minute_counts(),
        thresholds: e.thresholds(),
        stats: e.datasource_stats(DataSource::SystemLogs),
    }
}
