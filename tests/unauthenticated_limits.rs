//! Cheap-to-abuse paths, over real HTTP against the real daemon: what a
//! caller without a token (or with little effort) can make the daemon spend,
//! and the small token/admin holes of the security review (issue 14).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

/// Sends `head` and then up to `body_len` bytes of body from another thread
/// (ignoring write errors: the server may close first), and returns the
/// status line's code of the answer, read with a timeout.
fn status_of_big_request(d: &Daemon, head: String, body_len: usize) -> u16 {
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'['; 64 << 10];
        let mut sent = 0;
        while sent < body_len {
            let n = chunk.len().min(body_len - sent);
            if w.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        sent
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let status = loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(r) = parse_complete(&buf) {
            break Some(r.status);
        }
    };
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    status.unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&buf)))
}

#[test]
fn tokenless_10mib_pipe_bodies_are_refused_without_being_read() {
    let d = Daemon::start();
    d.ingest("system_logs", &[tagged_row("x", now_secs() - 60)], true);
    assert_eq!(d.get("/v0/health").status, 200);
    let idle_kb = proc_status_kb(d.pid(), "VmHWM").unwrap();
    let ten_mib = 10 << 20;
    // One request, only its head sent: the 401 must come without the body.
    let head = |ct: &str, auth: &str| {
        format!(
            "POST /v0/pipes/recent_logs.json HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {ct}\r\nContent-Length: {ten_mib}\r\nConnection: close\r\n\r\n"
        )
    };
    let t0 = Instant::now();
    assert_eq!(
        status_of_big_request(&d, head("application/json", ""), 0),
        401
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "401 waited for a body"
    );
    // Several at once, bodies really sent (JSON array and form), no token
    // and a wrong one.
    std::thread::scope(|sc| {
        for i in 0..6 {
            let (ct, auth, want) = match i % 3 {
                0 => ("application/json", String::new(), 401),
                1 => ("application/x-www-form-urlencoded", String::new(), 401),
                _ => (
                    "application/json",
                    "Authorization: Bearer nope-nope-nope\r\n".to_string(),
                    403,
                ),
            };
            let h = head(ct, &auth);
            let d = &d;
            sc.spawn(move || assert_eq!(status_of_big_request(d, h, ten_mib), want));
        }
    });
    let peak_kb = proc_status_kb(d.pid(), "VmHWM").unwrap();
    println!("tokenless pipe bodies: peak RSS {idle_kb} kB idle, {peak_kb} kB after");
    assert!(
        peak_kb < idle_kb + 6 * 1024,
        "peak RSS grew from {idle_kb} kB to {peak_kb} kB on refused bodies"
    );
    // With a token, a body over the pipe limit is refused by its declared
    // length, also without reading it.
    let auth = format!("Authorization: Bearer {}\r\n", d.token);
    assert_eq!(
        status_of_big_request(&d, head("application/json", &auth), 0),
        413
    );
    // A small authenticated body still works.
    let r = d.request(
        "POST",
        "/v0/pipes/recent_logs.json",
        Some(&d.token),
        &[("Content-Type", "application/json")],
        Some(br#"{"limit": 5}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
}

#[test]
fn pipe_requests_with_a_body_are_bounded_in_number() {
    let d = Daemon::options()
        .arg("--request-timeout-ms")
        .arg("20000")
        .start();
    // 16 authenticated requests whose bodies never come hold every slot.
    let head = format!(
        "POST /v0/pipes/recent_logs.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        d.token
    );
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(d.addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        held.push(s);
    }
    let t0 = Instant::now();
    let r = loop {
        let r = d.request(
            "POST",
            "/v0/pipes/recent_logs.json",
            Some(&d.token),
            &[("Content-Type", "application/json")],
            Some(b"{}"),
        );
        if r.status == 429 || t0.elapsed() > Duration::from_secs(10) {
            break r;
        }
        // The held requests may not all have reached their handler yet.
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["error"].as_str().unwrap().contains("pipe"));
    // GET pipes (no body) are not held up.
    assert_eq!(d.pipe("recent_logs.json", &[]).status, 200);
    drop(held);
    let t0 = Instant::now();
    loop {
        let r = d.request(
            "POST",
            "/v0/pipes/recent_logs.json",
            Some(&d.token),
            &[],
            Some(b"limit=1"),
        );
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429);
        assert!(t0.elapsed() < Duration::from_secs(10), "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_answers_while_the_connection_cap_is_full() {
    let d = Daemon::options()
        .arg("--max-connections")
        .arg("4")
        .arg("--header-read-timeout-ms")
        .arg("30000")
        .start();
    // Four idle connections take every slot (each sends one byte so it is
    // surely accepted and waiting for headers).
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(d.addr).unwrap();
        s.write_all(b"G").unwrap();
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let h = raw_http(
        d.addr,
        b"GET /v0/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(h.status, 200, "{}", h.text());
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "health waited {:?}",
        t0.elapsed()
    );
    let req = format!(
        "GET /v0/datasources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        d.token
    );
    let r = raw_http(d.addr, req.as_bytes());
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["error"].as_str().unwrap().contains("connections"));
    drop(idle);
    let t0 = Instant::now();
    loop {
        let r = raw_http(d.addr, req.as_bytes());
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(t0.elapsed() < Duration::from_secs(10), "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn blank_or_short_admin_tokens_refuse_to_start() {
    if common::clickhouse::embedded_only("an admin-token file written by hand") {
        return;
    }
    for bad in [" ", "short", "has a space in it ok"] {
        let e = Daemon::try_start_with(
            Daemon::options()
                .admin_token_configured_elsewhere(bad)
                .arg("--admin-token")
                .arg(bad),
        )
        .err()
        .unwrap_or_else(|| panic!("started with admin token {bad:?}"));
        assert!(e.contains("at least 16 characters"), "{e}");
    }
    // A short token in the admin-token file is refused too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/admin-token"), "abc\n").unwrap();
    let e = Daemon::try_start_with(
        Daemon::options()
            .no_admin_token()
            .data_dir(dir.path().join("data")),
    )
    .err()
    .expect("started with a 3-character admin token file");
    assert!(e.contains("at least 16 characters"), "{e}");
}

#[test]
fn token_names_are_checked_and_logged_escaped() {
    let d = Daemon::start();
    for bad in [
        "a\nb".to_string(),
        "esc\u{1b}[31m".to_string(),
        "nul\0".to_string(),
        "x".repeat(60_000),
        String::new(),
    ] {
        let r = d.request(
            "POST",
            &format!(
                "/v0/tokens?{}",
                qs(&[("name", &bad), ("scope", "PIPES:READ:recent_logs")])
            ),
            Some(&d.token),
            &[],
            Some(b""),
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    // Only the admin token (listed first, as Tinybird lists it).
    assert_eq!(
        d.get("/v0/tokens").json()["tokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A name with quotes and unicode is fine, and logged escaped.
    d.create_token("ünïcode \"quoted\"", &["PIPES:READ:recent_logs"]);
    // A quarantine reason is capped in the log whatever the row's size.
    let huge = "y".repeat(500_000);
    let body = format!(
        "{{\"timestamp\":\"{huge}\",\"service\":\"s\",\"severity\":\"INFO\",\"message\":\"m\"}}\n"
    );
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(counts(&r.json()), (0, 1));
    std::thread::sleep(Duration::from_millis(200));
    let log = d.log();
    assert!(log.contains("rows quarantined"), "{log}");
    let longest = log.lines().map(str::len).max().unwrap();
    assert!(longest < 2048, "a log line of {longest} bytes");
    assert!(!log.contains('\u{1b}'));
}

#[test]
fn token_count_is_capped() {
    if common::clickhouse::embedded_only("a tokens.json written by hand") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let tokens: Vec<_> = (0..1000)
        .map(|i| {
            serde_json::json!({
                "name": format!("t{i}"),
                "token": format!("lp.{}", random_token()),
                "scopes": [{"type": "PIPES:READ", "resource": "recent_logs", "filter": ""}],
            })
        })
        .collect();
    std::fs::write(
        data.join("tokens.json"),
        serde_json::to_vec(&serde_json::json!({ "tokens": tokens })).unwrap(),
    )
    .unwrap();
    let d = Daemon::options().data_dir(&data).start();
    let r = d.post(
        &format!(
            "/v0/tokens?{}",
            qs(&[("name", "one-more"), ("scope", "PIPES:READ:recent_logs")])
        ),
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("at most 1000 tokens"));
    assert_eq!(
        d.request("DELETE", "/v0/tokens/t0", Some(&d.token), &[], None)
            .status,
        200
    );
    d.create_token("one-more", &["PIPES:READ:recent_logs"]);
}

#[test]
fn scopes_must_name_an_existing_pipe_or_data_source() {
    let d = Daemon::start();
    for bad in [
        "PIPES:READ:no_such_pipe",
        "DATASOURCES:APPEND:no_such_ds",
        "DATASOURCES:READ:nope",
    ] {
        let r = d.post(
            &format!("/v0/tokens?{}", qs(&[("name", "t"), ("scope", bad)])),
            b"",
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("no such"), "{}", r.text());
    }
    d.create_token(
        "ok",
        &["PIPES:READ:log_anomalies", "DATASOURCES:APPEND:system_logs"],
    );
}

#[test]
fn bearer_is_case_insensitive_and_token_answers_are_not_cached() {
    let d = Daemon::start();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = d.request(
            "GET",
            "/v0/tokens",
            None,
            &[("Authorization", &format!("{scheme} {}", d.token))],
            None,
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = d.post(
        &format!(
            "/v0/tokens?{}",
            qs(&[("name", "c"), ("scope", "PIPES:READ:recent_logs")])
        ),
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        d.get("/v0/tokens/c").header("cache-control"),
        Some("no-store")
    );
    let r = d.request("DELETE", "/v0/tokens/c", Some(&d.token), &[], None);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // A scheme that is not Bearer is no token at all.
    let r = d.request(
        "GET",
        "/v0/tokens",
        None,
        &[("Authorization", &format!("Basic {}", d.token))],
        None,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn the_data_dir_is_private() {
    if common::clickhouse::embedded_only("the files of the data dir") {
        return;
    }
    let d = Daemon::options().no_admin_token().start();
    d.ingest("system_logs", &[tagged_row("p", now_secs() - 60)], true);
    d.create_token("t", &["PIPES:READ:recent_logs"]);
    let mut seen = 0;
    let mut stack = vec![d.data_dir.clone()];
    while let Some(p) = stack.pop() {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
            seen += 1;
        }
    }
    assert!(seen >= 4, "only {seen} files under the data dir");
}

/// A data dir an older build made 0755 (files 0644) is made private at the
/// next start, and the log says so.
#[test]
fn an_older_world_readable_data_dir_is_made_private_at_start() {
    if common::clickhouse::embedded_only("the files of the data dir") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mut d = Daemon::options().data_dir(&dir).start();
    d.ingest("system_logs", &[tagged_row("old", now_secs() - 60)], true);
    d.stop();
    let set = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&dir, 0o755);
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            set(&p, 0o644);
            files.push(p);
        }
    }
    assert!(!files.is_empty(), "no file directly in the data dir");
    d.start_again();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data dir");
    for p in &files {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    let log = d.log();
    assert!(
        log.contains("data dir was accessible to group/other: made it 0700"),
        "{log}"
    );
    assert_eq!(d.row_count("system_logs"), 1);
}
