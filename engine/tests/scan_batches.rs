//! `Engine::scan`: every matching row exactly once, in batches of at most
//! the asked size, with the time range and service/severity filters applied,
//! over several hours, hot and compact segments, for logs and thresholds;
//! a scan started before a compaction reads the rows it started with; a
//! compact hour is read as the columns asked for; a split scan reads each
//! row once.

mod common;

use common::*;
use logpulse_engine::compaction::CompactOptions;
use logpulse_engine::*;

/// Drains a scan; returns the messages (sorted) and the number of calls.
fn drain(mut s: Scan, batch: usize) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let more = s
            .next_batch(batch, &mut |b| match b {
                ScanBatch::Logs(rows) => {
                    assert!(rows.len() <= batch);
                    for r in rows {
                        assert_eq!(r.timestamp, ts_of(&r.message));
                        out.push(r.message.to_string());
                    }
                }
                ScanBatch::LogColumns(cols) => {
                    assert!(cols.rows() <= batch);
                    let messages = cols.strings[3].as_ref().expect("message read");
                    assert_eq!(messages.len(), cols.rows());
                    for (m, ts) in messages.iter().zip(&cols.timestamp) {
                        assert_eq!(*ts, ts_of(m));
                        out.push(m.to_string());
                    }
                }
                _ => {}
            })
            .unwrap();
        calls += 1;
        if !more {
            break;
        }
    }
    out.sort();
    (out, calls)
}

/// The timestamp the test gives the row with message `m`.
fn ts_of(m: &str) -> u32 {
    BASE + m.parse::<u32>().unwrap() * 12
}

fn in_range(f: &ScanFilter, got: Vec<String>) -> Vec<String> {
    // Hot segments may return other rows of the same hours: keep the range.
    got.into_iter()
        .filter(|m| {
            let i: u32 = m.parse().unwrap();
            let ts = (BASE + i * 12) as u64;
            ts >= f.start && ts < f.end
        })
        .collect()
}

#[test]
fn scans_filter_by_time_service_and_severity_across_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let rows: Vec<Row> = (0..900u32)
        .map(|i| {
            let sev = if i % 3 == 0 { "ERROR" } else { "INFO" };
            log(
                BASE + i * 12,
                ["a", "b"][i as usize % 2],
                sev,
                format!("{i:04}"),
            )
        })
        .collect();
    for chunk in rows.chunks(100) {
        e.append(chunk, Durability::Visible).unwrap();
    }
    e.append(&[threshold("a", "ERROR", 2.0, BASE)], Durability::Visible)
        .unwrap();

    let all = ScanFilter::all(DataSource::SystemLogs);
    let (got, calls) = drain(e.scan(&all), 100);
    assert_eq!(got.len(), 900);
    assert!(calls >= 9, "{calls} calls");

    let f = ScanFilter {
        start: (BASE + 3600) as u64,
        end: (BASE + 7200) as u64,
        service: Some("a".into()),
        severity: Some("ERROR".into()),
        ..all.clone()
    };
    let want: Vec<String> = (0..900u32)
        .filter(|i| {
            let ts = BASE + i * 12;
            (BASE + 3600..BASE + 7200).contains(&ts) && i % 2 == 0 && i % 3 == 0
        })
        .map(|i| format!("{i:04}"))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(in_range(&f, drain(e.scan(&f), 7).0), want);
    let none = ScanFilter {
        service: Some("zzz".into()),
        ..all.clone()
    };
    assert!(drain(e.scan(&none), 10).0.is_empty());

    // A scan taken before the first hour is compacted reads the same rows.
    let early = e.scan(&all);
    let c = e
        .compact_hour(
            DataSource::SystemLogs,
            BASE / 3600,
            &CompactOptions::default(),
        )
        .unwrap();
    assert!(
        c.is_some(),
        "the first hour has several segments to compact"
    );
    assert_eq!(drain(early, 50).0.len(), 900);
    let (after, _) = drain(e.scan(&all), 64);
    assert_eq!(after, got);
    // Split for reading at once: every row in exactly one part.
    let parts = e.scan(&all).split(3);
    assert_eq!(parts.len(), 3, "three hours, three parts");
    let mut union: Vec<String> = Vec::new();
    for p in parts {
        let (rows, _) = drain(p, 64);
        assert!(!rows.is_empty());
        union.extend(rows);
    }
    union.sort();
    assert_eq!(union, got);
    assert_eq!(e.scan(&none).split(4).len(), 1, "an empty scan is one part");
    let first_hour = ScanFilter {
        end: (BASE + 3600) as u64,
        service: Some("b".into()),
        ..all.clone()
    };
    let want: Vec<String> = (0..300u32)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("{i:04}"))
        .collect();
    assert_eq!(drain(e.scan(&first_hour), 13).0, want);

    let mut t = e.scan(&ScanFilter::all(DataSource::Thresholds));
    let mut n = 0;
    while t
        .next_batch(10, &mut |b| {
            if let ScanBatch::Thresholds(r) = b {
                n += r.len();
            }
        })
        .unwrap()
    {}
    assert_eq!(n, 1);
    assert_eq!(t.stats().rows_read, 1);
    e.close().unwrap();
}

#[test]
fn a_compact_hour_is_read_as_the_columns_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let rows: Vec<Row> = (0..300u32)
        .map(|i| {
            log(
                BASE + i * 12,
                ["a", "b", "c"][i as usize % 3],
                "INFO",
                format!("{i:04}"),
            )
        })
        .collect();
    for chunk in rows.chunks(50) {
        e.append(chunk, Durability::Visible).unwrap();
    }
    e.compact_hour(
        DataSource::SystemLogs,
        BASE / 3600,
        &CompactOptions::default(),
    )
    .unwrap()
    .expect("the hour is compacted");

    // timestamp and service only: no body column is delivered.
    let f = ScanFilter {
        columns: 0b101,
        ..ScanFilter::all(DataSource::SystemLogs)
    };
    let mut s = e.scan(&f);
    let mut got: Vec<(u32, String)> = Vec::new();
    while s
        .next_batch(64, &mut |b| {
            let ScanBatch::LogColumns(cols) = b else {
                panic!("a compact hour is read as columns");
            };
            assert!(cols.rows() <= 64);
            for (i, v) in cols.strings.iter().enumerate() {
                assert_eq!(v.is_some(), i == 1, "column {} delivered", i + 1);
            }
            let services = cols.strings[1].as_ref().unwrap();
            got.extend(
                cols.timestamp
                    .iter()
                    .copied()
                    .zip(services.iter().map(|s| s.to_string())),
            );
        })
        .unwrap()
    {}
    got.sort();
    let want: Vec<(u32, String)> = (0..300u32)
        .map(|i| (BASE + i * 12, ["a", "b", "c"][i as usize % 3].to_string()))
        .collect();
    assert_eq!(got, want);
    // What was read: 4 bytes per timestamp and the service names.
    assert_eq!(s.stats().rows_read, 300);
    assert_eq!(s.stats().bytes_read, 300 * 4 + 300);
    e.close().unwrap();
}
