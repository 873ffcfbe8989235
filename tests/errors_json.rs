//! Proves every error response is `{"error": "<message>"}` with `Content-Type: application/json` and a fitting status, including the errors the HTTP framework makes itself (unknown route, wrong method, body too large, malformed query string or request line), and that 429s carry the rate-limit headers clients rely on.

mod common;

use common::*;

#[test]
fn api_errors_are_json() {
    let d = Daemon::options()
        .arg("--max-body-bytes")
        .arg("2048")
        .start();
    let t = d.token.clone();
    let big = vec![b'{'; 4096];
    /// (method, path, token, body, status)
    type Case<'a> = (&'a str, String, Option<&'a str>, Option<&'a [u8]>, u16);
    let cases: Vec<Case> = vec![
        ("GET", "/nope".into(), Some(&t), None, 404),
        ("GET", "/nope/deeper".into(), None, None, 404),
        ("GET", "/v0".into(), Some(&t), None, 404),
        ("GET", "/v0/nope".into(), None, None, 404),
        ("POST", "/v0/pipes".into(), Some(&t), Some(b""), 405),
        ("POST", "/v0/pipes/nope".into(), Some(&t), Some(b""), 404),
        ("GET", "/v0/pipes/nope.json".into(), Some(&t), None, 404),
        ("GET", "/v0/datasources/nope".into(), Some(&t), None, 404),
        (
            "POST",
            "/v0/events?name=nope".into(),
            Some(&t),
            Some(b"{}"),
            404,
        ),
        ("DELETE", "/v0/tokens/nope".into(), Some(&t), None, 404),
        (
            "GET",
            "/v0/events?name=system_logs".into(),
            Some(&t),
            None,
            405,
        ),
        (
            "PUT",
            "/v0/events?name=system_logs".into(),
            Some(&t),
            Some(b"{}"),
            405,
        ),
        (
            "DELETE",
            "/v0/pipes/recent_logs.json".into(),
            Some(&t),
            None,
            405,
        ),
        ("POST", "/v0/health".into(), None, Some(b""), 405),
        ("PATCH", "/v0/datasources".into(), Some(&t), Some(b""), 405),
        ("PUT", "/v0/tokens".into(), Some(&t), Some(b""), 405),
        ("POST", "/metrics".into(), Some(&t), Some(b""), 405),
        (
            "POST",
            "/v0/events?name=system_logs".into(),
            Some(&t),
            Some(&big),
            413,
        ),
        (
            "POST",
            "/v0/pipes/recent_logs.json".into(),
            Some(&t),
            Some(&big),
            413,
        ),
        (
            "POST",
            "/v0/events?name=system_logs".into(),
            None,
            Some(b"{}"),
            401,
        ),
        (
            "POST",
            "/v0/events?name=system_logs".into(),
            Some("bad"),
            Some(b"{}"),
            403,
        ),
        ("POST", "/v0/events".into(), Some(&t), Some(b"{}"), 400),
        (
            "POST",
            "/v0/events?name=system_logs&wait=perhaps".into(),
            Some(&t),
            Some(b"{}"),
            400,
        ),
        (
            "GET",
            "/v0/pipes/recent_logs.json?limit=0".into(),
            Some(&t),
            None,
            400,
        ),
        (
            "GET",
            "/v0/pipes/recent_logs.json?limit=%zz".into(),
            Some(&t),
            None,
            400,
        ),
        (
            "GET",
            "/v0/pipes/recent_logs.json?limit=%".into(),
            Some(&t),
            None,
            400,
        ),
        (
            "GET",
            "/v0/pipes/recent_logs.json?limit=%FF%FE".into(),
            Some(&t),
            None,
            400,
        ),
        (
            "GET",
            "/v0/pipes/recent_logs.json?start_time=%E2%82".into(),
            Some(&t),
            None,
            400,
        ),
        (
            "POST",
            "/v0/pipes/recent_logs.json".into(),
            Some(&t),
            Some(b"{not json"),
            400,
        ),
        (
            "POST",
            "/v0/pipes/recent_logs.json".into(),
            Some(&t),
            Some(b"{\"limit\": [}"),
            400,
        ),
        (
            "POST",
            "/v0/tokens?name=x&scope=NOPE".into(),
            Some(&t),
            Some(b""),
            400,
        ),
    ];
    for (m, p, tok, body, status) in cases {
        let r = d.request(m, &p, tok, &[], body);
        let msg = r.assert_error(status);
        assert!(!msg.is_empty(), "{m} {p}");
    }
    // Gzip that is not gzip.
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&t),
        &[("Content-Encoding", "gzip")],
        Some(b"definitely not gzip"),
    );
    r.assert_error(400);
    // 405 names the allowed methods (HTTP requires Allow).
    let r = d.request("DELETE", "/v0/events?name=system_logs", Some(&t), &[], None);
    r.assert_error(405);
    assert!(
        r.header("allow").is_some_and(|a| a.contains("POST")),
        "{:?}",
        r.headers
    );
}

#[test]
fn malformed_query_strings_are_json_errors_or_ignored() {
    let d = Daemon::start();
    let t = d.token.clone();
    // Broken escapes and odd separators: never a non-JSON answer.
    // Each answer pinned (a check accepting "200 or any 4xx" could not see
    // a change): pairs that do not parse and names the pipe does not take
    // are ignored; a `limit` that is no number is a 400.
    for (q, want) in [
        ("%", 200),
        ("%%", 200),
        ("a=%G1", 200),
        ("&&&", 200),
        ("=", 200),
        ("==x", 200),
        ("limit", 200),
        ("limit=&limit=5", 200),
        ("token", 200),
        ("%00=%00", 200),
        ("name=system_logs&&", 200),
        (";;", 200),
        ("a[b]=c", 200),
        ("limit=5%20", 200),
        ("limit=+5", 200),
        ("limit=%00", 400),
    ] {
        let r = d.get_as(&format!("/v0/pipes/recent_logs.json?{q}&token={t}"), None);
        assert!(
            r.content_type().starts_with("application/json"),
            "{q}: {:?} {}",
            r.headers,
            r.text()
        );
        assert_eq!(r.status, want, "{q}: {}", r.text());
        if want == 200 {
            assert!(r.json()["data"].is_array(), "{q}: {}", r.text());
        } else {
            r.assert_json_error();
        }
    }
}

#[test]
fn malformed_requests_rejected_by_the_http_parser_are_json() {
    let d = Daemon::start();
    let host = format!("Host: {}\r\nConnection: close\r\n", d.addr);
    // (request, the status hyper's parser answers it with)
    let requests: Vec<(Vec<u8>, u16)> = vec![
        // Raw bytes the URI grammar forbids, in the query string.
        (
            [
                b"GET /v0/pipes/recent_logs.json?limit=\xff HTTP/1.1\r\n".as_slice(),
                host.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            400,
        ),
        (
            [
                b"GET /v0/pipes/recent_logs.json?q=\"<>\" HTTP/1.1\r\n".as_slice(),
                host.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            400,
        ),
        (
            [
                b"GET /v0/health?a b HTTP/1.1\r\n".as_slice(),
                host.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            400,
        ),
        // A Content-Length that is not a number.
        (
            [
                b"POST /v0/events?name=system_logs HTTP/1.1\r\nContent-Length: abc\r\n".as_slice(),
                host.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            400,
        ),
    ];
    let long_uri = format!(
        "GET /v0/health?q={} HTTP/1.1\r\n{host}\r\n",
        "a".repeat(600 << 10)
    );
    let long_header = format!(
        "GET /v0/health HTTP/1.1\r\nX-Big: {}\r\n{host}\r\n",
        "b".repeat(600 << 10)
    );
    // A request line or header over hyper's buffer: 431 either way (hyper
    // reads the request line into the same buffer as the headers).
    let requests: Vec<(Vec<u8>, u16)> = requests
        .into_iter()
        .chain([
            (long_uri.into_bytes(), 431),
            (long_header.into_bytes(), 431),
        ])
        .collect();
    for (req, want) in requests {
        let r = d.raw(&req);
        let shown: String = String::from_utf8_lossy(&req).chars().take(120).collect();
        assert_eq!(r.status, want, "{shown:?}: {}", r.text());
        assert!(
            r.content_type().starts_with("application/json"),
            "{shown:?}: status {} without a JSON body: {:?} {:?}",
            r.status,
            r.headers,
            r.text()
        );
        let v = r.json();
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{shown:?}: {v}"
        );
    }
    // The daemon still serves.
    assert_eq!(d.get("/v0/health").status, 200);
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_a_json_error() {
    let d = Daemon::options()
        .arg("--request-timeout-ms")
        .arg("300")
        .start();
    let req = format!(
        "POST /v0/events?name=system_logs HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{{\"timestamp\":",
        d.addr, d.token
    );
    let t0 = std::time::Instant::now();
    let r = d.raw(req.as_bytes());
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(r.status, 400);
    r.assert_json_error();
    assert_eq!(d.row_count("system_logs"), 0);
}

#[test]
fn successful_answers_are_json_too() {
    let d = Daemon::start();
    for p in [
        "/v0/health",
        "/v0/workspace",
        "/v0/datasources",
        "/v0/tokens",
        "/v0/pipes/recent_logs.json",
    ] {
        let r = d.get(p);
        assert_eq!(r.status, 200, "{p}");
        assert!(
            r.content_type().starts_with("application/json"),
            "{p}: {:?}",
            r.content_type()
        );
        r.json();
    }
}

#[test]
fn rate_limited_ingestion_answers_429_with_retry_headers() {
    // One event request handled at a time and one write batch queued at
    // most: concurrent writers overflow them.
    let d = Daemon::options()
        .arg("--ingest-concurrency-max")
        .arg("1")
        .arg("--queue-batches-max")
        .arg("1")
        .start();
    let row = log_row("2023-06-01 14:30:00", "rl", "INFO", &"x".repeat(200));
    let body = ndjson(&vec![row; 200]);
    let mut seen = Vec::new();
    for _round in 0..5 {
        let got: Vec<Resp> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..12)
                .map(|_| {
                    s.spawn(|| d.post("/v0/events?name=system_logs&wait=true", body.as_bytes()))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        seen.extend(got.into_iter().filter(|r| r.status == 429));
        if !seen.is_empty() {
            break;
        }
    }
    assert!(!seen.is_empty(), "60 concurrent requests never got a 429");
    for r in seen {
        r.assert_error(429);
        for h in [
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            let v = r
                .header(h)
                .unwrap_or_else(|| panic!("429 without {h}: {:?}", r.headers));
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{h}: {v:?} is not an integer"));
        }
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    }
}
