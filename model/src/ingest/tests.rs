use super::*;
use crate::row::LogRow;

const NOW: u32 = 1_700_000_000;

fn parse(ds: DataSource, body: &str) -> Parsed<'_> {
    parse_body(
        ds,
        body.as_bytes(),
        &Import {
            id: "imp",
            now: NOW,
        },
    )
}

fn log<'a>(p: &'a Parsed) -> Vec<&'a LogRow<'a>> {
    p.rows
        .iter()
        .filter_map(|r| if let Row::Log(l) = r { Some(l) } else { None })
        .collect()
}

#[test]
fn good_and_bad_rows_of_one_body() {
    let body = "{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"auth\",\"severity\":\"error\",\"message\":\"x\"}\n\n\
                not json\n\
                {\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"  \",\"severity\":\"INFO\",\"message\":\"y\"}\n";
    let p = parse(DataSource::SystemLogs, body);
    assert_eq!((p.successful, p.quarantined), (1, 2));
    let rows = log(&p);
    assert_eq!(rows[0].severity, "ERROR");
    let q: Vec<_> = p
        .rows
        .iter()
        .filter_map(|r| {
            if let Row::Quarantine(_, q) = r {
                Some(q)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(q[0].raw, "not json");
    assert_eq!(q[1].error_column, vec!["service"]);
    assert_eq!(q[1].import_id, "imp");
}

#[test]
fn aliases_fill_absent_columns_in_order() {
    let body = r#"{"@timestamp":"2023-06-01T14:30:00Z","time":"2000-01-01","levelname":"warning","level":"info","app":"a","app_name":"first","host":"h1","msg":"m","metadata":{"k": [1, 2]},"extra":1}"#;
    let p = parse(DataSource::SystemLogs, body);
    let r = log(&p)[0];
    assert_eq!(r.timestamp, 1_685_629_800);
    assert_eq!(
        (&*r.service, &*r.severity, &*r.server_id, &*r.message),
        ("first", "WARNING", "h1", "m")
    );
    assert_eq!(r.metadata, r#"{"k":[1,2]}"#);
}

#[test]
fn numbers_and_booleans_become_text() {
    let body = r#"{"timestamp":1685629800,"service":"s","severity":"e","message":42,"error_code":true,"resource_id":1.5}"#;
    let p = parse(DataSource::SystemLogs, body);
    let r = log(&p)[0];
    assert_eq!(
        (&*r.message, &*r.error_code, &*r.resource_id),
        ("42", "true", "1.5")
    );
}

#[test]
fn pretty_printed_single_object_is_one_row() {
    let body = "{\n  \"timestamp\": \"2023-06-01 14:30:00\",\n  \"service\": \"authentication\",\n  \"severity\": \"ERROR\",\n  \"message\": \"Failed login attempt\",\n  \"metadata\": \"{\\\"ip\\\": \\\"192.168.1.1\\\"}\"\n}";
    let p = parse(DataSource::SystemLogs, body);
    assert_eq!((p.successful, p.quarantined), (1, 0));
    assert_eq!(log(&p)[0].metadata, "{\"ip\": \"192.168.1.1\"}");
}

#[test]
fn limits_and_missing_columns_quarantine() {
    let long = "s".repeat(129);
    let body = format!(
        "{{\"timestamp\":\"2023-06-01\",\"service\":\"{long}\",\"severity\":\"E\",\"message\":\"\"}}\n{{\"service\":\"a\",\"severity\":\"E\",\"message\":\"\"}}\n{{\"timestamp\":\"2106-01-01\",\"service\":\"a\",\"severity\":\"E\",\"message\":\"\"}}\n[1,2]\n{{\"timestamp\":\"2023-06-01\",\"service\":\"a\",\"severity\":\"E\"}}"
    );
    let p = parse(DataSource::SystemLogs, &body);
    assert_eq!((p.successful, p.quarantined), (0, 5));
}

#[test]
fn invalid_utf8_is_quarantined_not_lost() {
    let mut body =
        b"{\"timestamp\":\"2023-06-01\",\"service\":\"a\",\"severity\":\"E\",\"message\":\"ok\"}\n"
            .to_vec();
    body.extend_from_slice(b"{\"message\":\"\xff\xfe\"}\n");
    let p = parse_body(DataSource::SystemLogs, &body, &Import { id: "i", now: NOW });
    assert_eq!((p.successful, p.quarantined), (1, 1));
}

#[test]
fn thresholds_rules() {
    let body = r#"{"service":"auth","severity":"error","threshold_per_minute":10.5,"active":true,"updated_at":"2023-06-01 12:00:00"}
{"service":"auth","severity":"error","threshold_per_minute":"3"}
{"service":"auth","severity":"error","threshold_per_minute":0}
{"service":"auth","severity":"error","threshold_per_minute":1,"active":2}
{"service":"","severity":"error","threshold_per_minute":1}"#;
    let p = parse(DataSource::Thresholds, body);
    assert_eq!((p.successful, p.quarantined), (2, 3));
    let t: Vec<_> = p
        .rows
        .iter()
        .filter_map(|r| {
            if let Row::Threshold(t) = r {
                Some(t)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        (
            t[0].severity.as_str(),
            t[0].threshold_per_minute,
            t[0].active,
            t[0].updated_at
        ),
        ("ERROR", 10.5, 1, 1_685_620_800)
    );
    assert_eq!(
        (t[1].threshold_per_minute, t[1].active, t[1].updated_at),
        (3.0, 1, NOW)
    );
}
