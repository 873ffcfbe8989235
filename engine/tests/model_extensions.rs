//! Model test of the dashboard's extensions: under random appends (mixed-case
//! messages, late rows, threshold rows that take seqs), compactions and
//! reopenings, every `log_timeseries`, `recent_logs` with `contains` and
//! `logs_after` (the live tail's read) answer of the engine equals a naive
//! evaluation over a plain `Vec` of rows, as engine/tests/model.rs does for
//! the contract's pipes.
//!
//! Cases default to 24; set `LP_PROPTEST_CASES` to run more.

use std::borrow::Cow;
use std::collections::BTreeMap;

use logpulse_engine::compaction::CompactOptions;
use logpulse_engine::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// 2023-06-01 12:00:00 UTC.
const BASE: u32 = 1_685_620_800;
const SPAN: u32 = 3 * 3600;
const SERVICES: [&str; 3] = ["auth", "db", "api"];
const SEVERITIES: [&str; 3] = ["ERROR", "WARN", "INFO"];
/// Words messages are made of, in several cases, so that `contains` has to
/// ignore case (ASCII and not).
const WORDS: [&str; 8] = [
    "Timeout", "timeout", "TIMEOUT", "disk", "Échec", "échec", "ok", "x",
];
const NEEDLES: [&str; 7] = ["timeout", "TimeOut", "ÉCHEC", "disk ok", "", "nothing", "o"];

fn cases() -> u32 {
    std::env::var("LP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[derive(Clone, Debug)]
enum GenRow {
    Log {
        ts: u32,
        svc: usize,
        sev: usize,
        words: Vec<usize>,
    },
    Threshold {
        svc: usize,
    },
}

#[derive(Clone, Debug)]
struct Filter {
    start: Option<u32>,
    end: Option<u32>,
    svc: Option<usize>,
    sev: Option<usize>,
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<GenRow>),
    Timeseries {
        f: Filter,
        step: u32,
        limit: usize,
    },
    Contains {
        f: Filter,
        needle: usize,
        limit: usize,
    },
    After {
        after: u64,
        f: Filter,
        needle: Option<usize>,
        limit: usize,
    },
    Compact {
        hour: u32,
    },
    Reopen,
}

fn gen_row() -> impl Strategy<Value = GenRow> {
    prop_oneof![
        10 => (0..SPAN, 0..3usize, 0..3usize, proptest::collection::vec(0..WORDS.len(), 0..4))
            .prop_map(|(s, svc, sev, words)| GenRow::Log { ts: BASE + s, svc, sev, words }),
        1 => (0..3usize).prop_map(|svc| GenRow::Threshold { svc }),
    ]
}

fn bound() -> impl Strategy<Value = u32> {
    prop_oneof![
        (0..SPAN + 600).prop_map(|s| BASE - 300 + s),
        (0..=SPAN / 60).prop_map(|m| BASE + m * 60),
    ]
}

fn gen_filter() -> impl Strategy<Value = Filter> {
    let name = || prop_oneof![2 => Just(None), 1 => (0..4usize).prop_map(Some)];
    (
        proptest::option::of(bound()),
        proptest::option::of(bound()),
        name(),
        name(),
    )
        .prop_map(|(start, end, svc, sev)| Filter {
            start,
            end,
            svc,
            sev,
        })
}

fn gen_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec(gen_row(), 1..60).prop_map(Op::Append),
        3 => (gen_filter(), prop_oneof![Just(1u32), Just(5), Just(7), Just(60), Just(1440), 1..=1440u32], 1..=50usize)
            .prop_map(|(f, step, limit)| Op::Timeseries { f, step, limit }),
        3 => (gen_filter(), 0..NEEDLES.len(), 1..=20usize)
            .prop_map(|(f, needle, limit)| Op::Contains { f, needle, limit }),
        3 => (0..400u64, gen_filter(), proptest::option::of(0..NEEDLES.len()), 1..=30usize)
            .prop_map(|(after, f, needle, limit)| Op::After { after, f, needle, limit }),
        1 => (0..3u32).prop_map(|h| Op::Compact { hour: BASE / 3600 + h }),
        1 => Just(Op::Reopen),
    ]
}

fn name(list: &[&str], i: usize) -> String {
    list.get(i).map_or("nosuch".into(), |s| s.to_string())
}

fn log_filter(f: &Filter) -> LogFilter {
    LogFilter {
        start: f.start,
        end: f.end,
        service: f.svc.map(|i| name(&SERVICES, i)),
        severity: f.sev.map(|i| name(&SEVERITIES, i)),
    }
}

fn matches(r: &LogRow, f: &LogFilter) -> bool {
    f.start.is_none_or(|s| r.timestamp >= s)
        && f.end.is_none_or(|e| r.timestamp < e)
        && f.severity.as_deref().is_none_or(|v| r.severity == v)
        && f.service.as_deref().is_none_or(|s| r.service == s)
}

/// The naive `contains`: both sides lower-cased with Unicode rules.
fn naive_contains(message: &str, needle: &str) -> bool {
    message.to_lowercase().contains(&needle.to_lowercase())
}

#[derive(Default)]
struct Model {
    logs: Vec<(u64, LogRow<'static>)>,
}

impl Model {
    /// `SELECT toStartOfInterval(timestamp, INTERVAL step MINUTE) AS bucket,
    /// service, severity, count() ... GROUP BY 1,2,3 ORDER BY 1,2,3`.
    fn timeseries(
        &self,
        f: &LogFilter,
        step: u32,
        limit: usize,
    ) -> (Vec<(u32, String, String, u64)>, u64) {
        let mut groups: BTreeMap<(u32, String, String), u64> = BTreeMap::new();
        for (_, r) in self.logs.iter().filter(|(_, r)| matches(r, f)) {
            let bucket = r.timestamp - r.timestamp % (step * 60);
            *groups
                .entry((bucket, r.service.to_string(), r.severity.to_string()))
                .or_default() += 1;
        }
        let total = groups.len() as u64;
        let rows = groups
            .into_iter()
            .take(limit)
            .map(|((b, s, v), n)| (b, s, v, n))
            .collect();
        (rows, total)
    }

    /// `recent_logs` with `AND positionCaseInsensitiveUTF8(message, needle) > 0`.
    fn containing(&self, f: &LogFilter, needle: &str, limit: usize) -> (Vec<LogRow<'static>>, u64) {
        let mut hits: Vec<&(u64, LogRow)> = self
            .logs
            .iter()
            .filter(|(_, r)| matches(r, f) && naive_contains(&r.message, needle))
            .collect();
        hits.sort_by_key(|h| std::cmp::Reverse((h.1.timestamp, h.0)));
        let total = hits.len() as u64;
        (
            hits.into_iter().take(limit).map(|h| h.1.clone()).collect(),
            total,
        )
    }

    /// Rows with seq > after, in seq order, at most `limit`.
    fn after(
        &self,
        after: u64,
        f: &LogFilter,
        needle: Option<&str>,
        limit: usize,
    ) -> Vec<(u64, LogRow<'static>)> {
        self.logs
            .iter()
            .filter(|(s, r)| {
                *s > after && matches(r, f) && needle.is_none_or(|n| naive_contains(&r.message, n))
            })
            .take(limit)
            .cloned()
            .collect()
    }
}

fn to_rows(model: &mut Model, gen: &[GenRow], first_seq: u64) -> Vec<Row<'static>> {
    let mut out = Vec::new();
    for (i, g) in gen.iter().enumerate() {
        match g {
            GenRow::Log {
                ts,
                svc,
                sev,
                words,
            } => {
                let msg: Vec<&str> = words.iter().map(|w| WORDS[*w]).collect();
                let row = LogRow {
                    timestamp: *ts,
                    service: Cow::Owned(SERVICES[*svc].into()),
                    severity: Cow::Owned(SEVERITIES[*sev].into()),
                    message: Cow::Owned(msg.join(" ")),
                    ..Default::default()
                };
                model.logs.push((first_seq + i as u64, row.clone()));
                out.push(Row::Log(row));
            }
            GenRow::Threshold { svc } => out.push(Row::Threshold(ThresholdRow {
                service: SERVICES[*svc].into(),
                severity: "ERROR".into(),
                threshold_per_minute: 2.0,
                active: 1,
                updated_at: BASE,
            })),
        }
    }
    out
}

fn open(dir: &std::path::Path) -> Engine {
    let mut cfg = EngineConfig::new(dir);
    cfg.segment_bytes_max = 4096;
    Engine::open(cfg).expect("open engine")
}

fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut e = open(dir.path());
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Append(gen) => {
                // Seqs are given in row order (no quarantine rows here).
                let first = e.published_seq() + 1;
                let rows = to_rows(&mut model, gen, first);
                let r = e.append(&rows, Durability::Visible).expect("append");
                prop_assert_eq!(r.first_seq, first);
                prop_assert_eq!(e.published_seq(), r.last_seq);
            }
            Op::Timeseries { f, step: m, limit } => {
                let lf = log_filter(f);
                let got = e
                    .log_timeseries(&TimeseriesQuery {
                        filter: lf.clone(),
                        step_minutes: *m,
                        limit: *limit,
                    })
                    .expect("log_timeseries");
                let rows: Vec<_> = got
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.bucket,
                            r.service.to_string(),
                            r.severity.to_string(),
                            r.log_count,
                        )
                    })
                    .collect();
                let (want, total) = model.timeseries(&lf, *m, *limit);
                prop_assert_eq!(
                    got.rows_before_limit,
                    total,
                    "step {}: {:?} {}",
                    step,
                    lf,
                    m
                );
                prop_assert_eq!(rows, want, "step {}: {:?} step_minutes {}", step, lf, m);
            }
            Op::Contains { f, needle, limit } => {
                let lf = log_filter(f);
                let n = NEEDLES[*needle];
                let got = e
                    .recent_logs_containing(&lf, &Contains::new(n), *limit)
                    .expect("recent_logs contains");
                let (want, total) = model.containing(&lf, n, *limit);
                prop_assert_eq!(
                    got.rows_before_limit,
                    total,
                    "step {}: {:?} {:?}",
                    step,
                    lf,
                    n
                );
                prop_assert_eq!(got.rows, want, "step {}: {:?} contains {:?}", step, lf, n);
            }
            Op::After {
                after,
                f,
                needle,
                limit,
            } => {
                let lf = log_filter(f);
                let n = needle.map(|i| NEEDLES[i]);
                let c = n.map(Contains::new);
                let got = e
                    .logs_after(*after, &lf, c.as_ref(), *limit)
                    .expect("logs_after");
                let want = model.after(*after, &lf, n, *limit);
                prop_assert_eq!(
                    &got.rows,
                    &want,
                    "step {}: after {} {:?} {:?}",
                    step,
                    after,
                    lf,
                    n
                );
                // Paging from next_after finds exactly the rest.
                let rest = e
                    .logs_after(got.next_after, &lf, c.as_ref(), usize::MAX)
                    .expect("logs_after");
                let all = model.after(*after, &lf, n, usize::MAX);
                let paged: Vec<_> = got.rows.iter().chain(&rest.rows).cloned().collect();
                prop_assert_eq!(paged, all, "step {}: paging after {}", step, after);
            }
            Op::Compact { hour } => {
                e.compact_hour(DataSource::SystemLogs, *hour, &CompactOptions::default())
                    .expect("compact");
            }
            Op::Reopen => {
                e.close().expect("close");
                drop(e);
                e = open(dir.path());
            }
        }
    }
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
    fn extensions_match_the_naive_model(ops in proptest::collection::vec(gen_op(), 1..40)) {
        run_case(ops)?;
    }
}

/// Worked by hand: buckets of 5 minutes aligned to the epoch, and a
/// case-insensitive `contains`.
#[test]
fn hand_computed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let log = |ts: u32, svc: &str, msg: &str| {
        Row::Log(LogRow {
            timestamp: ts,
            service: Cow::Owned(svc.into()),
            severity: Cow::Borrowed("ERROR"),
            message: Cow::Owned(msg.into()),
            ..Default::default()
        })
    };
    // 12:00:10, 12:04:59, 12:05:00 and 12:09:00.
    let rows = vec![
        log(BASE + 10, "db", "Disk FULL"),
        log(BASE + 299, "db", "disk ok"),
        log(BASE + 300, "api", "upstream timeout"),
        log(BASE + 540, "db", "DISK full again"),
    ];
    e.append(&rows, Durability::Visible).unwrap();
    let ts = e
        .log_timeseries(&TimeseriesQuery {
            filter: LogFilter::default(),
            step_minutes: 5,
            limit: 100,
        })
        .expect("log_timeseries");
    let got: Vec<_> = ts
        .rows
        .iter()
        .map(|r| (r.bucket - BASE, r.service.to_string(), r.log_count))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "db".to_string(), 2),
            (300, "api".to_string(), 1),
            (300, "db".to_string(), 1)
        ]
    );
    let c = e
        .recent_logs_containing(&LogFilter::default(), &Contains::new("disk full"), 10)
        .unwrap();
    let msgs: Vec<_> = c.rows.iter().map(|r| r.message.to_string()).collect();
    assert_eq!(msgs, vec!["DISK full again", "Disk FULL"]);
    assert_eq!(c.rows_before_limit, 2);
    let page = e.logs_after(2, &LogFilter::default(), None, 10).unwrap();
    let seqs: Vec<u64> = page.rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(page.next_after, 4);
    e.close().unwrap();
}
