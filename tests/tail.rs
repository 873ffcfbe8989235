//! Proves `GET /v0/tail`: rows arrive as Server-Sent Events with their seq as
//! id; `Last-Event-ID` resumes from the store with no gap and no duplicate,
//! also across a restart; filters apply; keep-alive comments flow; a slow
//! client is told `lagged` (rows delivered plus rows reported missed equal
//! rows ingested) while ingestion keeps its speed (measured); streams beyond
//! `tail_clients_max` get 429; scopes are enforced; SIGTERM ends open streams;
//! rows from every ingest protocol (Events API, OTLP, Loki, `_bulk`, syslog)
//! reach the tail.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// One Server-Sent Event (or comment).
#[derive(Debug, Default, Clone)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: String,
    comment: Option<String>,
}

struct Stream {
    lines: BufReader<Box<dyn Read + Send + Sync>>,
}

impl Stream {
    /// The next event or comment; None at the end of the stream.
    fn next(&mut self) -> Option<Sse> {
        let mut ev = Sse::default();
        let mut any = false;
        loop {
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => panic!("reading the stream: {e}"),
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if any {
                    return Some(ev);
                }
                continue;
            }
            any = true;
            if let Some(c) = line.strip_prefix(':') {
                ev.comment = Some(c.trim().to_string());
            } else if let Some(v) = line.strip_prefix("event:") {
                ev.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                ev.id = Some(v.trim().parse().expect("numeric id"));
            } else if let Some(v) = line.strip_prefix("data:") {
                ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }

    /// The next `row` event (skipping comments): (id, row).
    fn row(&mut self) -> (u64, Value) {
        loop {
            let ev = self.next().expect("stream ended");
            if ev.event == "row" {
                return (
                    ev.id.expect("row has an id"),
                    serde_json::from_str(&ev.data).unwrap(),
                );
            }
            assert!(ev.comment.is_some(), "unexpected event {ev:?}");
        }
    }
}

/// Opens a tail stream; Err(status, body) when refused.
fn open(
    d: &Daemon,
    query: &str,
    token: Option<&str>,
    last_id: Option<u64>,
) -> Result<Stream, (u16, String)> {
    let agent = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(20))
        .build();
    let mut req = agent.get(&d.url(&format!("/v0/tail{query}")));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    match req.call() {
        Ok(r) => {
            assert_eq!(r.content_type(), "text/event-stream");
            Ok(Stream {
                lines: BufReader::new(r.into_reader()),
            })
        }
        Err(ureq::Error::Status(s, r)) => Err((s, r.into_string().unwrap_or_default())),
        Err(e) => panic!("tail: {e}"),
    }
}

fn rows(tag: &str, n: usize, service: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"timestamp": "2024-03-01 10:00:00", "service": service, "severity": "info",
                   "message": format!("{tag}-{i}")})
        })
        .collect()
}

#[test]
fn resume_with_last_event_id_across_a_restart_has_no_gap_and_no_duplicate() {
    let mut d = Daemon::start();
    d.ingest("system_logs", &rows("a", 10, "api"), true);
    // From the beginning of the store.
    let mut s = open(&d, "", Some(&d.token), Some(0)).unwrap();
    let first: Vec<(u64, Value)> = (0..10).map(|_| s.row()).collect();
    let msgs: Vec<&str> = first
        .iter()
        .map(|r| r.1["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, (0..10).map(|i| format!("a-{i}")).collect::<Vec<_>>());
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(first[0].1["severity"], "INFO");
    assert_eq!(first[0].1["timestamp"], "2024-03-01 10:00:00");
    let seen = first[4].0;
    drop(s);
    d.ingest("system_logs", &rows("b", 5, "api"), true);
    d.ingest("system_logs", &rows("x", 3, "other"), true);
    d.restart();
    // Resume after the fifth row, through the query parameter this time.
    let q = format!("?last_event_id={seen}&service=api");
    let mut s = open(&d, &q, Some(&d.token), None).unwrap();
    let resumed: Vec<(u64, Value)> = (0..10).map(|_| s.row()).collect();
    let msgs: Vec<String> = resumed
        .iter()
        .map(|r| r.1["message"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (5..10)
        .map(|i| format!("a-{i}"))
        .chain((0..5).map(|i| format!("b-{i}")))
        .collect();
    assert_eq!(msgs, want, "no gap, no duplicate, filter applied");
    assert_eq!(resumed[0].0, first[5].0, "ids survive the restart");
    // Then live rows follow without a gap.
    d.ingest("system_logs", &rows("c", 3, "api"), false);
    d.ingest("system_logs", &rows("y", 2, "other"), false);
    d.ingest("system_logs", &rows("d", 2, "api"), false);
    let live: Vec<String> = (0..5)
        .map(|_| s.row().1["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(live, ["c-0", "c-1", "c-2", "d-0", "d-1"]);
    // A Last-Event-ID that is not a row id is a 400.
    let r = d.request(
        "GET",
        "/v0/tail?last_event_id=abc",
        Some(&d.token),
        &[],
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn filters_keepalive_scopes_and_shutdown() {
    let mut d = Daemon::options()
        .arg("--tail-keepalive-ms")
        .arg("200")
        .start();
    // Scopes: none 401, wrong 403, DATASOURCES:READ:system_logs in ?token= is enough.
    assert_eq!(open(&d, "", None, None).err().unwrap().0, 401);
    let appender = d.create_token("app", &["DATASOURCES:APPEND:system_logs"]);
    assert_eq!(open(&d, "", Some(&appender), None).err().unwrap().0, 403);
    let reader = d.create_token("reader", &["DATASOURCES:READ:system_logs"]);
    let mut s = open(
        &d,
        &format!("?token={reader}&severity=error&contains=DISK"),
        None,
        None,
    )
    .unwrap();
    // A comment arrives before any row: the keep-alive.
    let first = s.next().unwrap();
    assert_eq!(first.comment.as_deref(), Some("keepalive"), "{first:?}");
    d.ingest(
        "system_logs",
        &[
            json!({"timestamp": 1700000000, "service": "db", "severity": "error", "message": "disk full"}),
            json!({"timestamp": 1700000000, "service": "db", "severity": "warn", "message": "Disk slow"}),
            json!({"timestamp": 1700000000, "service": "db", "severity": "ERROR", "message": "timeout"}),
            json!({"timestamp": 1700000000, "service": "db", "severity": "Error", "message": "no DISK left"}),
        ],
        false,
    );
    assert_eq!(s.row().1["message"], "disk full");
    assert_eq!(s.row().1["message"], "no DISK left");
    // SIGTERM ends the open stream, and the daemon exits 0 promptly.
    let t0 = Instant::now();
    d.stop();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    loop {
        match s.lines.read_line(&mut String::new()) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[test]
fn streams_beyond_the_limit_get_429() {
    let d = Daemon::options().arg("--tail-clients-max").arg("2").start();
    let a = open(&d, "", Some(&d.token), None).unwrap();
    let _b = open(&d, "", Some(&d.token), None).unwrap();
    let (status, body) = open(&d, "", Some(&d.token), None)
        .err()
        .expect("third refused");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("tail_clients_max"), "{body}");
    let r = d.request("GET", "/v0/tail", Some(&d.token), &[], None);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert!(r.content_type().starts_with("application/json"));
    // Closing a stream frees its slot (the server notices on its next write).
    drop(a);
    let t0 = Instant::now();
    loop {
        d.ingest("system_logs", &rows("p", 1, "api"), false);
        match open(&d, "", Some(&d.token), None) {
            Ok(_) => break,
            Err((429, _)) if t0.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("slot not freed: {e:?}"),
        }
    }
}

/// Rows per second of `batches` requests of `per_batch` rows of `msg_bytes`.
fn ingest_rate(d: &Daemon, tag: &str, batches: usize, per_batch: usize, msg_bytes: usize) -> f64 {
    let pad = "x".repeat(msg_bytes);
    let t0 = Instant::now();
    for b in 0..batches {
        let body: String = (0..per_batch)
            .map(|i| {
                json!({"timestamp": 1700000000, "service": "load", "severity": "INFO",
                       "message": format!("{tag}-{b}-{i} {pad}")})
                .to_string()
                    + "\n"
            })
            .collect();
        let r = d.post("/v0/events?name=system_logs", body.as_bytes());
        assert_eq!(r.status, 202, "{}", r.text());
    }
    (batches * per_batch) as f64 / t0.elapsed().as_secs_f64()
}

#[test]
fn a_slow_client_gets_lagged_and_ingestion_keeps_its_speed() {
    let d = Daemon::options()
        .arg("--tail-buffer-rows")
        .arg("64")
        .start();
    let (batches, per_batch, msg, rounds) = (15, 500, 2000, 3);
    // Warm up, then the speed with no stream open: the best of a few rounds,
    // as other tests share the machine.
    ingest_rate(&d, "warm", 5, per_batch, msg);
    let best = |tag: &str| {
        (0..rounds)
            .map(|r| ingest_rate(&d, &format!("{tag}{r}"), batches, per_batch, msg))
            .fold(0.0, f64::max)
    };
    let alone = best("alone");
    // Let the tail's position pass those rows before a stream opens.
    std::thread::sleep(Duration::from_millis(500));
    // A client that opens a stream and reads nothing while 45 MB arrive.
    let mut slow = open(&d, "?service=load", Some(&d.token), None).unwrap();
    let with_slow = best("slow");
    let batches = batches * rounds;
    println!(
        "ingest speed: {alone:.0} rows/s alone, {with_slow:.0} rows/s with a stalled tail client \
         ({:.2}x; best of {rounds} rounds of {} rows each)",
        with_slow / alone,
        batches / rounds * per_batch
    );
    assert!(
        with_slow > alone * 0.3,
        "a stalled client slowed ingestion: {alone:.0} -> {with_slow:.0} rows/s"
    );
    // Now the client reads: rows, then `lagged` with what it missed, then the
    // stream goes on with rows ingested afterwards.
    let total = (batches * per_batch) as u64;
    let (mut delivered, mut missed, mut lagged_events) = (0u64, 0u64, 0);
    let mut last_id = 0;
    while delivered + missed < total {
        let ev = slow.next().expect("stream ended");
        match ev.event.as_str() {
            "row" => {
                let id = ev.id.unwrap();
                assert!(id > last_id, "ids increase");
                assert!(
                    ev.data.contains("\"slow"),
                    "only rows ingested after opening"
                );
                last_id = id;
                delivered += 1;
            }
            "lagged" => {
                missed += ev.data.parse::<u64>().expect("lagged carries a count");
                lagged_events += 1;
            }
            _ => assert!(ev.comment.is_some(), "{ev:?}"),
        }
    }
    println!("slow client: {delivered} rows delivered, {missed} reported missed in {lagged_events} lagged events");
    assert_eq!(
        delivered + missed,
        total,
        "every row is delivered or reported"
    );
    assert!(
        lagged_events >= 1 && missed > 0,
        "the client was told it lagged"
    );
    d.ingest("system_logs", &[json!({"timestamp": 1700000000, "service": "load", "severity": "INFO", "message": "after"})], false);
    let (_, row) = slow.row();
    assert_eq!(row["message"], "after");
}

#[test]
fn rows_from_every_ingest_protocol_reach_the_tail() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = Daemon::options()
        .arg("--syslog-udp-listen")
        .arg(format!("127.0.0.1:{port}"))
        .start();
    let mut s = open(&d, "?contains=via-", Some(&d.token), None).unwrap();
    d.ingest(
        "system_logs",
        &[json!({"timestamp": 1700000000, "service": "ev", "severity": "info", "message": "via-events"})],
        false,
    );
    let otlp = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000000000000",
            "severityText": "INFO", "body": {"stringValue": "via-otlp"}}]}]}]});
    let loki = json!({"streams": [{"stream": {"app": "loki"},
        "values": [["1700000000000000000", "via-loki"]]}]});
    let bulk = format!(
        "{}\n{}\n",
        json!({"index": {}}),
        json!({"@timestamp": "2023-11-14T22:13:20Z", "service": "es", "message": "via-bulk"})
    );
    for (path, body, ct) in [
        ("/v1/logs", otlp.to_string(), "application/json"),
        ("/loki/api/v1/push", loki.to_string(), "application/json"),
        ("/es/_bulk", bulk, "application/x-ndjson"),
    ] {
        let r = d.request(
            "POST",
            path,
            Some(&d.token),
            &[("Content-Type", ct)],
            Some(body.as_bytes()),
        );
        assert!(r.status < 300, "{path}: {} {}", r.status, r.text());
    }
    udp.send_to(
        b"<14>1 2023-11-14T22:13:20Z host sl - - - via-syslog",
        ("127.0.0.1", port),
    )
    .unwrap();
    let mut got: Vec<String> = (0..5)
        .map(|_| s.row().1["message"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "via-bulk",
            "via-events",
            "via-loki",
            "via-otlp",
            "via-syslog"
        ]
    );
}
