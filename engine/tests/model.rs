//! Model test: under random appends (late rows, equal timestamps, threshold updates with tied `updated_at`, quarantine rows), closes and reopenings, every `recent_logs`, `error_distribution` and `log_anomalies` answer of the engine equals a naive in-memory evaluation of API.md's SQL, and so do its row counts, minute counts and thresholds in force.
//!
//! Cases default to 24; set `LP_PROPTEST_CASES` to run more.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use logpulse_engine::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// 2023-06-01 12:00:00 UTC.
const BASE: u32 = 1_685_620_800;
/// Rows spread over four hours.
const SPAN: u32 = 4 * 3600;
const SERVICES: [&str; 5] = ["auth", "db", "api", "web", "cache"];
/// As a client might send them; the ingest layer upper-cases them before
/// they reach the engine, and so does this test.
const SEVERITIES: [&str; 5] = ["error", "WARN", "Info", "debug", "Critical"];
/// A filter index past the universe names a service/severity with no rows.
const NO_SUCH: usize = 5;

fn cases() -> u32 {
    std::env::var("LP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

// ---------------------------------------------------------------------------
// Generated operations

#[derive(Clone, Debug)]
enum GenRow {
    Log {
        ts: u32,
        svc: usize,
        sev: usize,
        msg: String,
        server: String,
        code: String,
    },
    Threshold {
        svc: usize,
        sev: usize,
        per_minute: f64,
        active: u8,
        updated_at: u32,
    },
    Quarantine {
        ts: u32,
    },
}

#[derive(Clone, Debug)]
struct GenFilter {
    start: Option<u32>,
    end: Option<u32>,
    svc: Option<usize>,
    sev: Option<usize>,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        rows: Vec<GenRow>,
        synced: bool,
    },
    Recent {
        f: GenFilter,
        limit: usize,
    },
    Distribution {
        f: GenFilter,
        limit: usize,
    },
    Anomalies {
        f: GenFilter,
        window: u32,
        limit: usize,
    },
    Reopen,
    /// Background-style compaction of every hour of every data source, in
    /// blocks of this many rows.
    Compact {
        block_rows: usize,
    },
}

fn row_ts() -> impl Strategy<Value = u32> {
    prop_oneof![
        // A hot 20 minutes, so that minutes go over their thresholds.
        4 => (0..1200u32).prop_map(|s| BASE + 3600 + s),
        2 => (0..SPAN).prop_map(|s| BASE + s),
        // Minute starts, many equal timestamps.
        1 => (0..SPAN / 60).prop_map(|m| BASE + m * 60),
        // Around hour boundaries.
        1 => (0..5u32, 0..3u32).prop_map(|(h, d)| BASE + h * 3600 + d - 1),
    ]
}

fn bound() -> impl Strategy<Value = u32> {
    prop_oneof![
        (0..SPAN + 1200).prop_map(|s| BASE - 600 + s),
        (0..=SPAN / 60 + 20).prop_map(|m| BASE - 600 + m * 60),
        (0..=5u32).prop_map(|h| BASE + h * 3600),
        (0..1300u32).prop_map(|s| BASE + 3550 + s),
    ]
}

fn name_idx() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        3 => Just(None),
        3 => (0..5usize).prop_map(Some),
        1 => Just(Some(NO_SUCH)),
    ]
}

fn gen_filter() -> impl Strategy<Value = GenFilter> {
    (
        proptest::option::of(bound()),
        proptest::option::of(bound()),
        name_idx(),
        name_idx(),
    )
        .prop_map(|(start, end, svc, sev)| GenFilter {
            start,
            end,
            svc,
            sev,
        })
}

fn gen_row() -> impl Strategy<Value = GenRow> {
    let log = (
        row_ts(),
        0..5usize,
        0..5usize,
        "[a-z\u{e9} \"]{0,12}",
        prop_oneof![Just(String::new()), "srv-[0-9]".prop_map(String::from)],
        prop_oneof![Just(String::new()), "E[0-9]{3}".prop_map(String::from)],
    )
        .prop_map(|(ts, svc, sev, msg, server, code)| GenRow::Log {
            ts,
            svc,
            sev,
            msg,
            server,
            code,
        });
    let threshold = (
        0..=5usize,
        0..5usize,
        proptest::sample::select(vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 7.0]),
        prop_oneof![3 => Just(1u8), 1 => Just(0u8)],
        // Few distinct versions, so that equal updated_at happen often.
        (0..6u32).prop_map(|i| BASE + i * 10),
    )
        .prop_map(
            |(svc, sev, per_minute, active, updated_at)| GenRow::Threshold {
                svc,
                sev,
                per_minute,
                active,
                updated_at,
            },
        );
    let quarantine = row_ts().prop_map(|ts| GenRow::Quarantine { ts });
    prop_oneof![12 => log, 2 => threshold, 1 => quarantine]
}

fn gen_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (proptest::collection::vec(gen_row(), 1..80), any::<bool>())
            .prop_map(|(rows, synced)| Op::Append { rows, synced }),
        3 => (gen_filter(), 1..=20usize).prop_map(|(f, limit)| Op::Recent { f, limit }),
        2 => (gen_filter(), 1..=20usize).prop_map(|(f, limit)| Op::Distribution { f, limit }),
        3 => (
            gen_filter(),
            prop_oneof![4 => 1..=30u32, 2 => 30..=300u32, 1 => Just(10080u32)],
            1..=20usize,
        )
            .prop_map(|(f, window, limit)| Op::Anomalies { f, window, limit }),
        1 => Just(Op::Reopen),
        1 => prop_oneof![Just(3usize), Just(16), Just(4096)]
            .prop_map(|block_rows| Op::Compact { block_rows }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    n_svc: usize,
    n_sev: usize,
    /// High cardinality: each row's service carries one of this many
    /// instance suffixes (0: plain names).
    instances: usize,
    segment_bytes_max: u64,
    ops: Vec<Op>,
}

fn gen_case() -> impl Strategy<Value = Case> {
    (
        3..=5usize,
        3..=5usize,
        // Tiny segments exercise several files per hour and roll-overs.
        prop_oneof![Just(1u64 << 30), Just(2048u64), Just(16384u64)],
        proptest::collection::vec(gen_op(), 1..60),
        prop_oneof![3 => Just(0usize), 1 => Just(50), 1 => Just(1000)],
    )
        .prop_map(|(n_svc, n_sev, segment_bytes_max, ops, instances)| Case {
            n_svc,
            n_sev,
            instances,
            segment_bytes_max,
            ops,
        })
}

// ---------------------------------------------------------------------------
// Names

struct Names {
    n_svc: usize,
    n_sev: usize,
    instances: usize,
}

impl Names {
    /// The service a filter or threshold names.
    fn service(&self, i: usize) -> String {
        if i >= NO_SUCH {
            "nosuch".into()
        } else if self.instances == 0 {
            SERVICES[i % self.n_svc].into()
        } else {
            format!("{}-{i}", SERVICES[i % self.n_svc])
        }
    }
    /// The service of the row with `seq`: with instances, almost a service
    /// per row.
    fn row_service(&self, i: usize, seq: u64) -> String {
        if self.instances == 0 {
            self.service(i)
        } else {
            let k = (seq * 7919) % self.instances as u64;
            format!("{}-{k}", SERVICES[i % self.n_svc])
        }
    }
    fn severity(&self, i: usize) -> String {
        if i >= NO_SUCH {
            "NOSUCH".into()
        } else {
            SEVERITIES[i % self.n_sev].to_uppercase()
        }
    }
    fn filter(&self, f: &GenFilter) -> LogFilter {
        LogFilter {
            start: f.start,
            end: f.end,
            service: f.svc.map(|i| self.service(i)),
            severity: f.sev.map(|i| self.severity(i)),
        }
    }
}

// ---------------------------------------------------------------------------
// The model: rows with their ingestion order, and the SQL of API.md applied
// literally.

#[derive(Default)]
struct Model {
    /// (seq, row), in ingestion order.
    logs: Vec<(u64, LogRow<'static>)>,
    thresholds: Vec<(u64, ThresholdRow)>,
    quarantined: u64,
    next_seq: u64,
}

/// ClickHouse's `round(x, 2)`.
fn ch_round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

fn matches(r: &LogRow, f: &LogFilter) -> bool {
    f.start.is_none_or(|s| r.timestamp >= s)
        && f.end.is_none_or(|e| r.timestamp < e)
        && f.severity.as_deref().is_none_or(|v| r.severity == v)
        && f.service.as_deref().is_none_or(|s| r.service == s)
}

impl Model {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Converts generated rows to engine rows and records them.
    fn append(&mut self, names: &Names, rows: &[GenRow]) -> Vec<Row<'static>> {
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            match r {
                GenRow::Log {
                    ts,
                    svc,
                    sev,
                    msg,
                    server,
                    code,
                } => {
                    let row = LogRow {
                        timestamp: *ts,
                        service: Cow::Owned(names.row_service(*svc % NO_SUCH, self.next_seq)),
                        severity: Cow::Owned(names.severity(*sev % NO_SUCH)),
                        server_id: Cow::Owned(server.clone()),
                        message: Cow::Owned(format!("#{}.{i} {msg}", self.next_seq)),
                        error_code: Cow::Owned(code.clone()),
                        resource_id: Cow::Borrowed(""),
                        metadata: Cow::Owned(if i % 3 == 0 {
                            format!("{{\"i\":{i}}}")
                        } else {
                            String::new()
                        }),
                    };
                    let seq = self.seq();
                    self.logs.push((seq, row.clone()));
                    out.push(Row::Log(row));
                }
                GenRow::Threshold {
                    svc,
                    sev,
                    per_minute,
                    active,
                    updated_at,
                } => {
                    let row = ThresholdRow {
                        service: names.service(*svc),
                        severity: names.severity(*sev),
                        threshold_per_minute: *per_minute,
                        active: *active,
                        updated_at: *updated_at,
                    };
                    let seq = self.seq();
                    self.thresholds.push((seq, row.clone()));
                    out.push(Row::Threshold(row));
                }
                GenRow::Quarantine { ts } => {
                    self.quarantined += 1;
                    out.push(Row::Quarantine(
                        DataSource::SystemLogsQuarantine,
                        QuarantineRow {
                            insertion_date: *ts,
                            error_column: vec!["service".into()],
                            error: vec!["service is required".into()],
                            import_id: format!("imp-{i}"),
                            raw: "{\"message\":\"x\"}".into(),
                        },
                    ));
                }
            }
        }
        out
    }

    /// `recent_logs`: (rows, rows_before_limit).
    fn recent(&self, f: &LogFilter, limit: usize) -> (Vec<LogRow<'static>>, u64) {
        let mut hits: Vec<&(u64, LogRow)> =
            self.logs.iter().filter(|(_, r)| matches(r, f)).collect();
        // ORDER BY timestamp DESC, seq DESC
        hits.sort_by_key(|h| std::cmp::Reverse((h.1.timestamp, h.0)));
        let total = hits.len() as u64;
        (
            hits.into_iter()
                .take(limit)
                .map(|(_, r)| r.clone())
                .collect(),
            total,
        )
    }

    /// `error_distribution`: (service, severity, count, percentage, first, last) rows.
    #[allow(clippy::type_complexity)]
    fn distribution(
        &self,
        f: &LogFilter,
        limit: usize,
    ) -> (Vec<(String, String, u64, f64, u32, u32)>, u64) {
        let mut groups: BTreeMap<(String, String), (u64, u32, u32)> = BTreeMap::new();
        for (_, r) in self.logs.iter().filter(|(_, r)| matches(r, f)) {
            let g = groups
                .entry((r.service.to_string(), r.severity.to_string()))
                .or_insert((0, u32::MAX, 0));
            g.0 += 1;
            g.1 = g.1.min(r.timestamp);
            g.2 = g.2.max(r.timestamp);
        }
        let total: u64 = groups.values().map(|g| g.0).sum();
        let mut rows: Vec<_> = groups
            .into_iter()
            .map(|((s, v), (c, first, last))| {
                // 100 * count() is an integer; `/` is Float64 division.
                let pct = ch_round2((100 * c) as f64 / total as f64);
                (s, v, c, pct, first, last)
            })
            .collect();
        rows.sort_by(|a, b| {
            b.2.cmp(&a.2)
                .then_with(|| a.0.cmp(&b.0))
                .then_with(|| a.1.cmp(&b.1))
        });
        let n = rows.len() as u64;
        rows.truncate(limit);
        (rows, n)
    }

    /// The row in force per key: greatest updated_at, ties to the last ingested.
    fn in_force(&self) -> BTreeMap<(String, String), ThresholdRow> {
        let mut best: BTreeMap<(String, String), (u32, u64, ThresholdRow)> = BTreeMap::new();
        for (seq, t) in &self.thresholds {
            let k = (t.service.clone(), t.severity.clone());
            let newer = best
                .get(&k)
                .is_none_or(|(u, s, _)| (t.updated_at, *seq) > (*u, *s));
            if newer {
                best.insert(k, (t.updated_at, *seq, t.clone()));
            }
        }
        best.into_iter().map(|(k, (_, _, t))| (k, t)).collect()
    }

    /// `log_anomalies`: (minute, service, severity, count, threshold, ratio).
    #[allow(clippy::type_complexity)]
    fn anomalies(
        &self,
        end: u32,
        window: u32,
        svc: Option<&str>,
        sev: Option<&str>,
        limit: usize,
    ) -> (Vec<(u32, String, String, u64, f64, f64)>, u64) {
        let thresholds: HashMap<(String, String), f64> = self
            .in_force()
            .into_iter()
            .filter(|(_, t)| t.active == 1)
            .map(|(k, t)| (k, t.threshold_per_minute))
            .collect();
        let start = end as i64 - window as i64 * 60;
        let mut groups: BTreeMap<(u32, String, String), u64> = BTreeMap::new();
        for (_, r) in &self.logs {
            let ts = r.timestamp as i64;
            if ts >= start
                && ts < end as i64
                && svc.is_none_or(|s| r.service == s)
                && sev.is_none_or(|v| r.severity == v)
            {
                *groups
                    .entry((
                        r.timestamp / 60 * 60,
                        r.service.to_string(),
                        r.severity.to_string(),
                    ))
                    .or_default() += 1;
            }
        }
        let mut rows: Vec<_> = groups
            .into_iter()
            .filter_map(|((m, s, v), c)| {
                let t = *thresholds.get(&(s.clone(), v.clone()))?;
                ((c as f64) > t).then(|| (m, s, v, c, t, ch_round2(c as f64 / t)))
            })
            .collect();
        rows.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.3.cmp(&a.3))
                .then_with(|| a.1.cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        let n = rows.len() as u64;
        rows.truncate(limit);
        (rows, n)
    }

    fn minute_counts(&self) -> HashMap<(u32, String, String), u32> {
        let mut m = HashMap::new();
        for (_, r) in &self.logs {
            *m.entry((
                r.timestamp / 60,
                r.service.to_string(),
                r.severity.to_string(),
            ))
            .or_default() += 1;
        }
        m
    }
}

// ---------------------------------------------------------------------------
// Running a case

fn open(dir: &std::path::Path, segment_bytes_max: u64) -> Engine {
    let mut cfg = EngineConfig::new(dir);
    cfg.segment_bytes_max = segment_bytes_max;
    Engine::open(cfg).expect("open engine")
}

/// Checks what does not depend on a query: counts, seq order, thresholds.
fn check_state(e: &Engine, m: &Model, deep: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        e.datasource_stats(DataSource::SystemLogs).rows,
        m.logs.len() as u64
    );
    prop_assert_eq!(
        e.datasource_stats(DataSource::SystemLogsQuarantine).rows,
        m.quarantined
    );
    prop_assert_eq!(
        e.datasource_stats(DataSource::Thresholds).rows,
        m.thresholds.len() as u64
    );
    let in_force: Vec<ThresholdRow> = m.in_force().into_values().collect();
    prop_assert_eq!(e.thresholds(), in_force);
    if deep {
        prop_assert_eq!(e.minute_counts(), m.minute_counts());
        let mut scanned: Vec<(u64, LogRow<'static>)> = Vec::new();
        e.scan_logs(|seq, r| scanned.push((seq, r.into_owned())))
            .unwrap();
        prop_assert!(scanned.windows(2).all(|w| w[0].0 < w[1].0));
        let rows: Vec<_> = scanned.into_iter().map(|(_, r)| r).collect();
        let expected: Vec<_> = m.logs.iter().map(|(_, r)| r.clone()).collect();
        prop_assert_eq!(rows, expected);
    }
    Ok(())
}

fn run_case(case: Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let names = Names {
        n_svc: case.n_svc,
        n_sev: case.n_sev,
        instances: case.instances,
    };
    let mut model = Model::default();
    let mut e = open(dir.path(), case.segment_bytes_max);
    for (step, op) in case.ops.iter().enumerate() {
        match op {
            Op::Append { rows, synced } => {
                let rows = model.append(&names, rows);
                let d = if *synced {
                    Durability::Synced
                } else {
                    Durability::Visible
                };
                let r = e.append(&rows, d).expect("append");
                prop_assert_eq!(r.rows, rows.len() as u64);
                check_state(&e, &model, false)?;
            }
            Op::Recent { f, limit } => {
                let lf = names.filter(f);
                let got = e.recent_logs(&lf, *limit).expect("recent_logs");
                let (rows, total) = model.recent(&lf, *limit);
                prop_assert_eq!(
                    got.rows_before_limit,
                    total,
                    "step {}: recent_logs {:?} limit {}",
                    step,
                    lf,
                    limit
                );
                prop_assert_eq!(got.rows, rows, "step {}: recent_logs {:?}", step, lf);
            }
            Op::Distribution { f, limit } => {
                let lf = names.filter(f);
                let got = e.error_distribution(&lf, *limit).unwrap();
                let (rows, total) = model.distribution(&lf, *limit);
                let got_rows: Vec<_> = got
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.service.to_string(),
                            r.severity.to_string(),
                            r.count,
                            r.percentage,
                            r.first_seen,
                            r.last_seen,
                        )
                    })
                    .collect();
                prop_assert_eq!(
                    got.rows_before_limit,
                    total,
                    "step {}: error_distribution {:?}",
                    step,
                    lf
                );
                prop_assert_eq!(got_rows, rows, "step {}: error_distribution {:?}", step, lf);
            }
            Op::Anomalies { f, window, limit } => {
                let lf = names.filter(f);
                let end = f.end.or(f.start).unwrap_or(BASE + 3600 + 1200);
                let q = AnomalyQuery {
                    end,
                    window_minutes: *window,
                    service: lf.service.clone(),
                    severity: lf.severity.clone(),
                    limit: *limit,
                };
                let got = e.log_anomalies(&q).unwrap();
                let (rows, total) = model.anomalies(
                    end,
                    *window,
                    lf.service.as_deref(),
                    lf.severity.as_deref(),
                    *limit,
                );
                let got_rows: Vec<_> = got
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.minute,
                            r.service.to_string(),
                            r.severity.to_string(),
                            r.log_count,
                            r.threshold_per_minute,
                            r.excess_ratio,
                        )
                    })
                    .collect();
                prop_assert_eq!(
                    got.rows_before_limit,
                    total,
                    "step {}: log_anomalies {:?}",
                    step,
                    q
                );
                prop_assert_eq!(got_rows, rows, "step {}: log_anomalies {:?}", step, q);
            }
            Op::Compact { block_rows } => {
                let opts = logpulse_engine::compaction::CompactOptions {
                    block_rows: *block_rows,
                    ..Default::default()
                };
                let hours: std::collections::BTreeSet<(DataSource, u32)> = e
                    .segment_infos()
                    .iter()
                    .map(|s| (s.ds, s.id.hour))
                    .collect();
                for (ds, hour) in hours {
                    e.compact_hour(ds, hour, &opts).expect("compact");
                }
                check_state(&e, &model, true)?;
            }
            Op::Reopen => {
                check_state(&e, &model, true)?;
                e.close().expect("close");
                // The data dir lock is released when the handle is dropped.
                drop(e);
                e = open(dir.path(), case.segment_bytes_max);
                check_state(&e, &model, true)?;
            }
        }
    }
    check_state(&e, &model, true)?;
    e.close().expect("close");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_the_sql_model(case in gen_case()) {
        run_case(case)?;
    }
}

/// A fixed scenario whose answers are worked out by hand, so that the model
/// itself is checked against API.md and not only against the engine.
#[test]
fn model_agrees_with_hand_computed_answers() {
    let names = Names {
        n_svc: 3,
        n_sev: 3,
        instances: 0,
    };
    let mut m = Model::default();
    let log = |ts, svc, sev| GenRow::Log {
        ts,
        svc,
        sev,
        msg: String::new(),
        server: String::new(),
        code: String::new(),
    };
    let th = |svc, sev, per_minute, active, updated_at| GenRow::Threshold {
        svc,
        sev,
        per_minute,
        active,
        updated_at,
    };
    // auth/ERROR: 3 rows in minute 0, db/ERROR: 1 row; 2 auth/WARN rows.
    m.append(
        &names,
        &[
            log(BASE + 5, 0, 0),
            log(BASE + 5, 0, 0),
            log(BASE + 59, 0, 0),
            log(BASE + 60, 1, 0),
            log(BASE + 1, 0, 1),
            log(BASE + 2, 0, 1),
            th(0, 0, 2.0, 1, BASE),
            th(0, 0, 9.0, 1, BASE - 10), // older: ignored
            th(0, 1, 1.0, 1, BASE),
            th(0, 1, 1.0, 0, BASE), // same updated_at, later: deactivates
        ],
    );
    let (rows, total) = m.recent(&LogFilter::default(), 2);
    assert_eq!(total, 6);
    assert_eq!(rows[0].timestamp, BASE + 60);
    assert_eq!(rows[1].timestamp, BASE + 59);
    let (rows, _) = m.recent(
        &LogFilter {
            end: Some(BASE + 59),
            ..Default::default()
        },
        2,
    );
    // Equal timestamps: the one ingested last first.
    assert_eq!((rows[0].timestamp, rows[1].timestamp), (BASE + 5, BASE + 5));
    assert!(rows[0].message.starts_with("#1.1"), "{}", rows[0].message);
    let (rows, total) = m.distribution(&LogFilter::default(), 10);
    assert_eq!(total, 3);
    assert_eq!(
        rows,
        vec![
            ("auth".into(), "ERROR".into(), 3, 50.0, BASE + 5, BASE + 59),
            ("auth".into(), "WARN".into(), 2, 33.33, BASE + 1, BASE + 2),
            ("db".into(), "ERROR".into(), 1, 16.67, BASE + 60, BASE + 60),
        ]
    );
    let (rows, total) = m.anomalies(BASE + 120, 2, None, None, 10);
    assert_eq!(total, 1);
    assert_eq!(
        rows,
        vec![(BASE, "auth".into(), "ERROR".into(), 3, 2.0, 1.5)]
    );
    assert_eq!(ch_round2(0.125), 0.12);
    assert_eq!(ch_round2(200.0 / 3.0), 66.67);
}

/// Exact ties at the second decimal go to the even neighbour, as in
/// ClickHouse (`round` of a Float64), in both `percentage` and
/// `excess_ratio`.
#[test]
fn engine_rounds_half_to_even() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 1 << 30);
    let mut rows = Vec::new();
    let log = |ts: u32, svc: &str| {
        Row::Log(LogRow {
            timestamp: ts,
            service: Cow::Owned(svc.into()),
            severity: Cow::Borrowed("ERROR"),
            ..Default::default()
        })
    };
    // 1 of 32 rows: 3.125 -> 3.12; 31 of 32: 96.875 -> 96.88.
    rows.push(log(BASE, "auth"));
    for i in 0..31 {
        rows.push(log(BASE + 120 + i, "db"));
    }
    // 9 rows in one minute against a threshold of 8: 1.125 -> 1.12.
    for i in 0..9 {
        rows.push(log(BASE + 600 + i, "api"));
    }
    rows.push(Row::Threshold(ThresholdRow {
        service: "api".into(),
        severity: "ERROR".into(),
        threshold_per_minute: 8.0,
        active: 1,
        updated_at: BASE,
    }));
    e.append(&rows, Durability::Visible).unwrap();
    let d = e
        .error_distribution(
            &LogFilter {
                end: Some(BASE + 600),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    let pct: Vec<(String, f64)> = d
        .rows
        .iter()
        .map(|r| (r.service.to_string(), r.percentage))
        .collect();
    assert_eq!(pct, vec![("db".into(), 96.88), ("auth".into(), 3.12)]);
    let a = e
        .log_anomalies(&AnomalyQuery {
            end: BASE + 660,
            window_minutes: 1,
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.rows.len(), 1);
    assert_eq!((a.rows[0].log_count, a.rows[0].excess_ratio), (9, 1.12));
}

/// Several threads append at once (so the writer forms group commits, and
/// tiny segments roll over inside them) while another thread queries: every
/// query sees whole batches only, and afterwards every answer equals the
/// model built from the seqs the appends were given.
#[test]
fn concurrent_appends_match_the_model() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const BATCH: u32 = 7;
    for segment_bytes_max in [1u64 << 30, 3000] {
        let dir = tempfile::tempdir().unwrap();
        let e = Arc::new(open(dir.path(), segment_bytes_max));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (e, done) = (e.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let r = e.recent_logs(&LogFilter::default(), 30).unwrap();
                    assert_eq!(
                        r.rows_before_limit % BATCH as u64,
                        0,
                        "half a batch visible"
                    );
                    assert!(r.rows_before_limit >= seen);
                    seen = r.rows_before_limit;
                    let d = e.error_distribution(&LogFilter::default(), 100).unwrap();
                    assert_eq!(
                        d.rows.iter().map(|r| r.count).sum::<u64>() % BATCH as u64,
                        0
                    );
                }
            })
        };
        let writers: Vec<_> = (0..4u32)
            .map(|t| {
                let e = e.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for b in 0..60u32 {
                        let rows: Vec<Row<'static>> = (0..BATCH)
                            .map(|i| {
                                let x = t * 7919 + b * 104_729 + i * 15_485_863;
                                Row::Log(LogRow {
                                    timestamp: BASE + x % SPAN,
                                    service: Cow::Borrowed(SERVICES[(x % 3) as usize]),
                                    severity: Cow::Borrowed(["ERROR", "WARN"][(x % 2) as usize]),
                                    message: Cow::Owned(format!("t{t}b{b}i{i}")),
                                    ..Default::default()
                                })
                            })
                            .collect();
                        let d = if b % 3 == 0 {
                            Durability::Synced
                        } else {
                            Durability::Visible
                        };
                        let r = loop {
                            match e.append(&rows, d) {
                                Ok(r) => break r,
                                Err(Error::Busy) => std::thread::yield_now(),
                                Err(err) => panic!("{err}"),
                            }
                        };
                        got.push((r.first_seq, rows));
                    }
                    got
                })
            })
            .collect();
        let mut model = Model::default();
        for w in writers {
            for (first, rows) in w.join().unwrap() {
                for (i, r) in rows.into_iter().enumerate() {
                    if let Row::Log(l) = r {
                        model.logs.push((first + i as u64, l.into_owned()));
                    }
                }
            }
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        model.logs.sort_by_key(|(s, _)| *s);
        let check = |e: &Engine| {
            check_state(e, &model, true).unwrap();
            for h in 0..4 {
                for f in [
                    LogFilter::default(),
                    LogFilter {
                        start: Some(BASE + h * 3600 + 100),
                        end: Some(BASE + h * 3600 + 3000),
                        service: Some("db".into()),
                        ..Default::default()
                    },
                ] {
                    let got = e.recent_logs(&f, 20).unwrap();
                    let (rows, total) = model.recent(&f, 20);
                    assert_eq!((got.rows, got.rows_before_limit), (rows, total));
                    let got = e.error_distribution(&f, 20).unwrap();
                    let (rows, total) = model.distribution(&f, 20);
                    let got_rows: Vec<_> = got
                        .rows
                        .iter()
                        .map(|r| {
                            (
                                r.service.to_string(),
                                r.severity.to_string(),
                                r.count,
                                r.percentage,
                                r.first_seen,
                                r.last_seen,
                            )
                        })
                        .collect();
                    assert_eq!((got_rows, got.rows_before_limit), (rows, total));
                }
            }
        };
        check(&e);
        e.close().unwrap();
        drop(Arc::try_unwrap(e).ok().expect("only handle"));
        let e = open(dir.path(), segment_bytes_max);
        check(&e);
    }
}
