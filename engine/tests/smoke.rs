//! The engine stores, answers, and recovers a small data set.

use logpulse_engine::*;

fn log(ts: u32, service: &str, severity: &str, msg: &str) -> Row<'static> {
    Row::Log(LogRow {
        timestamp: ts,
        service: service.to_string().into(),
        severity: severity.to_string().into(),
        message: msg.to_string().into(),
        ..Default::default()
    })
}

#[test]
fn append_query_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let base = 1_685_620_800; // 2023-06-01 12:00:00
    {
        let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let rows: Vec<_> = (0..1000u32)
            .map(|i| {
                log(
                    base + i * 7,
                    if i % 3 == 0 { "auth" } else { "db" },
                    if i % 2 == 0 { "ERROR" } else { "INFO" },
                    &format!("m{i}"),
                )
            })
            .collect();
        let r = e.append(&rows, Durability::Synced).unwrap();
        assert_eq!(r.rows, 1000);
        e.append(
            &[Row::Threshold(ThresholdRow {
                service: "db".into(),
                severity: "ERROR".into(),
                threshold_per_minute: 2.0,
                active: 1,
                updated_at: base,
            })],
            Durability::Visible,
        )
        .unwrap();
        let rl = e
            .recent_logs(
                &LogFilter {
                    service: Some("auth".into()),
                    severity: Some("ERROR".into()),
                    ..Default::default()
                },
                5,
            )
            .unwrap();
        assert_eq!(rl.rows.len(), 5);
        assert_eq!(rl.rows_before_limit, 167);
        assert_eq!(rl.rows[0].message, "m996");
        let d = e.error_distribution(&LogFilter::default(), 10).unwrap();
        assert_eq!(d.rows.iter().map(|r| r.count).sum::<u64>(), 1000);
        let a = e
            .log_anomalies(&AnomalyQuery {
                end: base + 7000,
                window_minutes: 200,
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert!(a.rows_before_limit > 0);
        e.close().unwrap();
    }
    let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
    assert_eq!(e.datasource_stats(DataSource::SystemLogs).rows, 1000);
    let rl = e
        .recent_logs(
            &LogFilter {
                service: Some("auth".into()),
                severity: Some("ERROR".into()),
                ..Default::default()
            },
            5,
        )
        .unwrap();
    assert_eq!(rl.rows[0].message, "m996");
    assert_eq!(e.thresholds().len(), 1);
    e.append(&[log(base, "auth", "ERROR", "late")], Durability::Visible)
        .unwrap();
    assert_eq!(e.datasource_stats(DataSource::SystemLogs).rows, 1001);
    e.truncate(DataSource::SystemLogs).unwrap();
    assert_eq!(e.datasource_stats(DataSource::SystemLogs).rows, 0);
}
