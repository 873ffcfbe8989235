use super::*;

const M: u32 = 1_700_000_040; // a minute start

fn obs(minutes: &[u32]) -> Vec<Observation> {
    vec![Observation {
        alertname: LOG_ANOMALY,
        service: "api".into(),
        severity: "ERROR".into(),
        anomalous: minutes
            .iter()
            .map(|m| Minute {
                minute: *m,
                log_count: 9,
                detail: Detail::Threshold {
                    threshold_per_minute: 5.0,
                },
            })
            .collect(),
    }]
}

fn key() -> Key {
    (LOG_ANOMALY.into(), "api".into(), "ERROR".into())
}

const RULES: Rules = Rules {
    for_minutes: 1,
    resolve_ms: 300_000,
};

fn ms(secs: u32) -> i64 {
    secs as i64 * 1000
}

#[test]
fn fires_at_once_then_resolves_after_the_quiet_minutes() {
    let mut b = Book::default();
    let yes = |_: &Key| true;
    assert_eq!(
        b.step(ms(M + 5), obs(&[M]), yes, &RULES),
        vec![Change::Fired(key())]
    );
    assert!(b.step(ms(M + 30), obs(&[M]), yes, &RULES).is_empty());
    // Five quiet minutes after the end of M: still firing just before.
    assert!(b.step(ms(M + 60 + 299), vec![], yes, &RULES).is_empty());
    assert_eq!(
        b.step(ms(M + 360), vec![], yes, &RULES),
        vec![Change::Resolved(key())]
    );
    let a = &b.alerts[&key()];
    assert_eq!(
        (a.status, a.starts_at_ms, a.resolved_at_ms),
        (Status::Resolved, ms(M + 5), Some(ms(M + 360)))
    );
    // The old minute, still in a window, does not fire again; a new one does.
    assert!(b.step(ms(M + 361), obs(&[M]), yes, &RULES).is_empty());
    assert_eq!(
        b.step(ms(M + 400), obs(&[M + 360]), yes, &RULES),
        vec![Change::Fired(key())]
    );
    assert_eq!(b.alerts[&key()].starts_at_ms, ms(M + 400));
}

#[test]
fn for_minutes_needs_a_run_and_a_broken_run_drops_the_pending_alert() {
    let rules = Rules {
        for_minutes: 2,
        ..RULES
    };
    let yes = |_: &Key| true;
    let mut b = Book::default();
    assert!(b.step(ms(M + 1), obs(&[M]), yes, &rules).is_empty());
    assert_eq!(b.alerts[&key()].status, Status::Pending);
    assert_eq!(
        b.step(ms(M + 61), obs(&[M, M + 60]), yes, &rules),
        vec![Change::Fired(key())]
    );
    assert_eq!(
        b.alerts[&key()].starts_at_ms,
        ms(M + 1),
        "startsAt is when it became pending"
    );
    let mut b = Book::default();
    b.step(ms(M + 1), obs(&[M]), yes, &rules);
    b.step(ms(M + 119), obs(&[M]), yes, &rules);
    assert!(b.alerts.contains_key(&key()));
    b.step(ms(M + 120), obs(&[M]), yes, &rules);
    assert!(b.alerts.is_empty());
}

#[test]
fn a_removed_threshold_resolves_and_the_book_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    let mut b = Book::default();
    b.step(ms(M + 5), obs(&[M]), |_: &Key| true, &RULES);
    assert!(b.dirty);
    b.save(&path).unwrap();
    let mut again = Book::load(&path).unwrap();
    assert_eq!(again.alerts, b.alerts);
    assert!(again
        .step(ms(M + 20), obs(&[M]), |_: &Key| true, &RULES)
        .is_empty());
    assert_eq!(
        again.step(ms(M + 25), obs(&[M]), |_: &Key| false, &RULES),
        vec![Change::Resolved(key())]
    );
    assert!(Book::load(&dir.path().join("none.json"))
        .unwrap()
        .alerts
        .is_empty());
    std::fs::write(&path, b"{not json").unwrap();
    assert!(Book::load(&path).is_err());
}
