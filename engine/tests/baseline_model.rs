//! Model test of `log_baseline_anomalies`: under random appends (late rows,
//! bursts, reopenings), every answer of the engine equals a naive evaluation
//! of the README's SQL over all rows kept in memory, and so do the per-minute
//! counts the alert engine reads (`threshold_minutes`).
//!
//! Cases default to 24; set `LP_PROPTEST_CASES` to run more.

use std::borrow::Cow;
use std::collections::BTreeMap;

use logpulse_engine::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// 2023-06-01 12:00:00 UTC.
const BASE: u32 = 1_685_620_800;
const SERVICES: [&str; 3] = ["auth", "db", "api"];
const SEVERITIES: [&str; 2] = ["ERROR", "WARN"];

fn cases() -> u32 {
    std::env::var("LP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[derive(Clone, Debug)]
struct Gen {
    ts: u32,
    svc: usize,
    sev: usize,
}

#[derive(Clone, Debug)]
struct Query {
    end: u32,
    window: u32,
    z: f64,
    min_count: u64,
    hours: u32,
    svc: Option<usize>,
    sev: Option<usize>,
    limit: usize,
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Gen>),
    Query(Query),
    Reopen,
}

fn gen_row() -> impl Strategy<Value = Gen> {
    let ts = prop_oneof![
        // A steady background over three hours.
        3 => (0..3 * 3600u32).prop_map(|s| BASE + s),
        // Bursts into few minutes of the last hour.
        3 => (0..4u32, 0..60u32).prop_map(|(m, s)| BASE + 2 * 3600 + 1800 + m * 60 + s),
        1 => (0..3 * 60u32).prop_map(|m| BASE + m * 60),
    ];
    (ts, 0..3usize, 0..2usize).prop_map(|(ts, svc, sev)| Gen { ts, svc, sev })
}

fn gen_query() -> impl Strategy<Value = Query> {
    (
        prop_oneof![
            (0..=40u32).prop_map(|m| BASE + 2 * 3600 + 1500 + m * 60),
            (0..4 * 3600u32).prop_map(|s| BASE + s),
        ],
        prop_oneof![1..=10u32, 10..=200u32],
        proptest::sample::select(vec![0.0, 0.5, 1.0, 2.0, 3.0]),
        proptest::sample::select(vec![0u64, 1, 2, 5, 10]),
        1..=3u32,
        proptest::option::of(0..4usize),
        proptest::option::of(0..3usize),
        1..=20usize,
    )
        .prop_map(
            |(end, window, z, min_count, hours, svc, sev, limit)| Query {
                end,
                window,
                z,
                min_count,
                hours,
                svc,
                sev,
                limit,
            },
        )
}

fn gen_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(gen_row(), 1..300).prop_map(Op::Append),
        4 => gen_query().prop_map(Op::Query),
        1 => Just(Op::Reopen),
    ]
}

fn service(i: usize) -> String {
    SERVICES.get(i).map_or("nosuch".into(), |s| s.to_string())
}

fn severity(i: usize) -> String {
    SEVERITIES.get(i).map_or("NOSUCH".into(), |s| s.to_string())
}

fn ch_round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

/// The README's SQL, literally: per key, per-minute counts of the window and
/// of the baseline (every row of the baseline range, grouped by minute).
fn model(rows: &[(u32, String, String)], q: &Query) -> (Vec<BaselineRow>, u64) {
    let start = q.end.saturating_sub(q.window * 60);
    let bstart = start.saturating_sub(q.hours * 3600);
    let svc = q.svc.map(service);
    let sev = q.sev.map(severity);
    type K = (String, String);
    let mut window: BTreeMap<(K, u32), u64> = BTreeMap::new();
    let mut base: BTreeMap<(K, u32), u64> = BTreeMap::new();
    for (ts, s, v) in rows {
        if svc.as_ref().is_some_and(|f| f != s) || sev.as_ref().is_some_and(|f| f != v) {
            continue;
        }
        let k = ((s.clone(), v.clone()), ts / 60 * 60);
        if *ts >= start && *ts < q.end {
            *window.entry(k).or_default() += 1;
        } else if *ts >= bstart && *ts < start {
            *base.entry(k).or_default() += 1;
        }
    }
    let n = (q.hours * 60) as f64;
    let mut out = Vec::new();
    for ((key, minute), c) in window {
        let counts: Vec<u64> = base
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|(_, c)| *c)
            .collect();
        let sum: u64 = counts.iter().sum();
        let sum_sq: u128 = counts.iter().map(|c| (*c as u128) * (*c as u128)).sum();
        let mean = sum as f64 / n;
        let stddev = (sum_sq as f64 / n - mean * mean).max(0.0).sqrt();
        let cf = c as f64;
        if c >= q.min_count && cf > mean + q.z * stddev {
            out.push(BaselineRow {
                minute,
                service: key.0.as_str().into(),
                severity: key.1.as_str().into(),
                log_count: c,
                baseline_mean: mean,
                baseline_stddev: stddev,
                z_score: ch_round2((cf - mean) / stddev),
            });
        }
    }
    out.sort_by(|a, b| {
        b.minute
            .cmp(&a.minute)
            .then_with(|| b.log_count.cmp(&a.log_count))
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.severity.cmp(&b.severity))
    });
    let before = out.len() as u64;
    out.truncate(q.limit);
    (out, before)
}

fn log(ts: u32, s: &str, v: &str, i: usize) -> Row<'static> {
    Row::Log(LogRow {
        timestamp: ts,
        service: Cow::Owned(s.into()),
        severity: Cow::Owned(v.into()),
        message: Cow::Owned(format!("m{i}")),
        ..Default::default()
    })
}

fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let mut rows: Vec<(u32, String, String)> = Vec::new();
    for op in ops {
        match op {
            Op::Append(gen) => {
                let batch: Vec<Row> = gen
                    .iter()
                    .enumerate()
                    .map(|(i, g)| {
                        rows.push((g.ts, service(g.svc), severity(g.sev)));
                        log(g.ts, &service(g.svc), &severity(g.sev), i)
                    })
                    .collect();
                engine.append(&batch, Durability::Visible).unwrap();
            }
            Op::Query(q) => {
                let got = engine
                    .log_baseline_anomalies(&BaselineQuery {
                        end: q.end,
                        window_minutes: q.window,
                        z: q.z,
                        min_count: q.min_count,
                        baseline_hours: q.hours,
                        service: q.svc.map(service),
                        severity: q.sev.map(severity),
                        limit: q.limit,
                    })
                    .unwrap();
                let (want, before) = model(&rows, &q);
                prop_assert_eq!(&got.rows, &want, "query {:?}", q);
                prop_assert_eq!(got.rows_before_limit, before);
            }
            Op::Reopen => {
                engine.close().unwrap();
                drop(engine);
                engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_the_sql_model(ops in proptest::collection::vec(gen_op(), 1..30)) {
        run_case(ops)?;
    }
}

#[test]
fn hand_computed_baseline() {
    // Baseline hour before the window: 60 rows in one minute → mean 1,
    // population stddev sqrt(60 - 1) = sqrt(59). Window: 30 rows.
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let mut batch: Vec<Row> = (0..60)
        .map(|i| log(BASE + 600, "api", "ERROR", i))
        .collect();
    batch.extend((0..30).map(|i| log(BASE + 3600 + 5, "api", "ERROR", i)));
    e.append(&batch, Durability::Visible).unwrap();
    let q = BaselineQuery {
        end: BASE + 3660,
        window_minutes: 1,
        z: 3.0,
        min_count: 10,
        baseline_hours: 1,
        service: None,
        severity: None,
        limit: 100,
    };
    let r = e.log_baseline_anomalies(&q).unwrap();
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(
        (row.minute, row.log_count, row.baseline_mean),
        (BASE + 3600, 30, 1.0)
    );
    assert!((row.baseline_stddev - 59f64.sqrt()).abs() < 1e-12);
    assert_eq!(row.z_score, 3.78); // (30 - 1) / 7.681 = 3.775...
                                   // min_count above the count, or a z the count does not reach: nothing.
    assert!(e
        .log_baseline_anomalies(&BaselineQuery {
            min_count: 31,
            ..q.clone()
        })
        .unwrap()
        .rows
        .is_empty());
    assert!(e
        .log_baseline_anomalies(&BaselineQuery {
            z: 3.8,
            ..q.clone()
        })
        .unwrap()
        .rows
        .is_empty());
    // The alert engine's counts: the threshold decides which keys are listed.
    assert!(e.threshold_minutes(BASE + 3540, 2).unwrap().is_empty());
    e.append(
        &[Row::Threshold(ThresholdRow {
            service: "api".into(),
            severity: "ERROR".into(),
            threshold_per_minute: 5.0,
            active: 1,
            updated_at: BASE,
        })],
        Durability::Visible,
    )
    .unwrap();
    let k = e.threshold_minutes(BASE + 3540, 2).unwrap();
    assert_eq!(k.len(), 1);
    assert_eq!(
        (k[0].threshold_per_minute, k[0].counts.clone()),
        (5.0, vec![0, 30])
    );
}
