//! Proves the daemon stands up to hostile input over HTTP: huge lines (a
//! 2 MiB and a 5 MiB line among good ones: the good rows are stored and the
//! big one quarantined; a body over the limit is refused with 413), 10000
//! levels of JSON nesting, invalid UTF-8 and NUL bytes (in lines, query
//! strings, request targets and headers), a gzip bomb (413 with bounded
//! memory), slow-loris clients (slow headers, slow bodies, idle connections:
//! timed out while others are served), and 2000 concurrent connections (each
//! answered with the right status, nothing lost). Every error is a JSON
//! `{"error"}`, the daemon never panics, and its open file descriptors come
//! back to their baseline afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn good_line(id: &str) -> String {
    tagged_row(id, SEED_TS).to_string()
}

fn events(d: &Daemon, body: &[u8], wait: bool) -> Resp {
    let path = if wait {
        "/v0/events?name=system_logs&wait=true"
    } else {
        "/v0/events?name=system_logs"
    };
    d.post(path, body)
}

/// Every `message` stored for `service`-less queries (all rows).
fn all_ids(d: &Daemon) -> Vec<String> {
    let v = d.pipe_json("recent_logs", &[("limit", "10000")]);
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect()
}

fn assert_healthy(d: &Daemon) {
    assert_eq!(d.get("/v0/health").status, 200);
    let log = d.log();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

/// Waits until the daemon's open fds are back to `baseline`.
fn assert_fds_back(d: &Daemon, baseline: usize, what: &str) {
    // On ClickHouse, a pool of idle connections to the endpoints may stay.
    let baseline = if clickhouse::enabled() {
        baseline + 32
    } else {
        baseline
    };
    let t0 = Instant::now();
    let mut n = fd_count(d.pid());
    while n > baseline && t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
        n = fd_count(d.pid());
    }
    assert!(n <= baseline, "{what}: {n} fds open, baseline {baseline}");
}

/// Sends `head`, then `body` (chunked if asked) piece by piece until the
/// daemon answers (it may answer before reading all of it); returns the answer.
fn send_until_answer(d: &Daemon, head: &[u8], body: &[u8], chunked: bool) -> Resp {
    let mut c = TcpStream::connect(d.addr).unwrap();
    c.write_all(head).unwrap();
    c.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut pieces = body.chunks(64 << 10);
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(r) = parse_complete(&got) {
                    return r;
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        let Some(p) = pieces.next() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let mut frame = Vec::new();
        if chunked {
            frame.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        }
        frame.extend_from_slice(p);
        if chunked {
            frame.extend_from_slice(b"\r\n");
        }
        c.set_nonblocking(false).unwrap();
        let sent = c.write_all(&frame);
        c.set_nonblocking(true).unwrap();
        if sent.is_err() {
            break;
        }
    }
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.read_to_end(&mut got);
    parse_complete(&got).unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&got)))
}

#[test]
fn huge_lines_are_quarantined_and_do_not_sink_the_request() {
    let d = Daemon::start();
    for (n, size) in [(1, 2usize << 20), (2, 5 << 20)] {
        let big = json!({
            "timestamp": "2023-06-01 14:30:00", "service": "big", "severity": "ERROR",
            "message": "m".repeat(size),
        })
        .to_string();
        let body = format!(
            "{}\n{big}\n{}\n",
            good_line(&format!("before{n}")),
            good_line(&format!("after{n}"))
        );
        let r = events(&d, body.as_bytes(), true);
        assert_eq!(
            r.status,
            200,
            "a {} MiB line among good ones: {}",
            size >> 20,
            r.text()
        );
        assert_eq!(counts(&r.json()), (2, 1));
        assert_eq!(d.row_count("system_logs_quarantine"), n);
    }
    // A 9 MiB line that is not JSON at all, in a body under the 10 MiB limit.
    let mut body = good_line("g9").into_bytes();
    body.push(b'\n');
    body.extend(std::iter::repeat_n(b'z', 9 << 20));
    let r = events(&d, &body, false);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(counts(&r.json()), (1, 1));
    // Over the body limit: 413, nothing stored; declared or found while
    // reading a chunked body.
    let over = vec![b'\n'; (10 << 20) + 1];
    let auth = format!("Authorization: Bearer {}\r\n", d.token);
    let declared = format!(
        "POST /v0/events?name=system_logs HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n",
        over.len()
    );
    send_until_answer(&d, declared.as_bytes(), &over, false).assert_error(413);
    let chunked = format!(
        "POST /v0/events?name=system_logs HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
    );
    send_until_answer(&d, chunked.as_bytes(), &over, true).assert_error(413);
    let mut ids = all_ids(&d);
    ids.sort();
    assert_eq!(
        ids,
        ["after1", "after2", "before1", "before2", "g9"],
        "rows stored"
    );
    assert_eq!(d.row_count("system_logs_quarantine"), 3);
    // The quarantine rows survive a restart (they were storable records).
    let mut d = d;
    d.crash_restart();
    assert_eq!(d.row_count("system_logs_quarantine"), 3);
    assert_eq!(d.row_count("system_logs"), 5);
    assert_healthy(&d);
}

#[test]
fn deep_nesting_invalid_utf8_and_nul_bytes_are_answered_properly() {
    let d = Daemon::start();
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let mut deep_field = tagged_row("deep-field", SEED_TS);
    deep_field["extra"] = json!("PLACEHOLDER");
    let deep_field = deep_field
        .to_string()
        .replace("\"PLACEHOLDER\"", &deep_object);
    let body = format!(
        "{}\n{deep_array}\n{deep_object}\n{deep_field}\n",
        good_line("g1")
    );
    let r = events(&d, body.as_bytes(), true);
    assert_eq!(r.status, 200, "{}", r.text());
    // The deep array and object are not rows; the row with a deep unknown
    // field is a valid row (unknown fields are ignored).
    assert_eq!(counts(&r.json()), (2, 2));
    // Pipes with deeply nested JSON and form bodies: 400 naming the problem.
    for body in [
        deep_array.clone(),
        deep_object.clone(),
        format!("{{\"limit\":{deep_array}}}"),
    ] {
        let r = d.request(
            "POST",
            "/v0/pipes/recent_logs.json",
            Some(&d.token),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        // serde_json's recursion limit: a 400 naming it.
        let msg = r.assert_error(400);
        assert!(
            msg.contains("recursion limit"),
            "deep JSON pipe body: {msg}"
        );
    }
    // Invalid UTF-8 and raw NUL bytes in lines: quarantined, the rest stored.
    let mut body = good_line("g2").into_bytes();
    body.extend_from_slice(b"\n{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"s\",\"severity\":\"e\",\"message\":\"\xff\xfe\"}\n");
    body.extend_from_slice(b"\xc3\x28\x00\x00\n\x00{\x00}\n");
    body.extend_from_slice(good_line("g3").as_bytes());
    let r = events(&d, &body, true);
    assert_eq!(counts(&r.json()), (2, 3), "{}", r.text());
    // An escaped NUL is a valid character of a message: stored and served back.
    let nul = json!({"timestamp": "2023-06-01 14:30:00", "service": "nul", "severity": "info", "message": "a\u{0}b"});
    assert_eq!(d.ingest("system_logs", &[nul], true), (1, 0));
    let v = d.pipe_json("recent_logs", &[("service", "nul")]);
    assert_eq!(v["data"][0]["message"], json!("a\u{0}b"));
    // Invalid UTF-8 and NULs in query strings, request targets and headers.
    // Bad bytes in a string parameter are replaced (U+FFFD) and match
    // nothing; a bad number is a 400.
    for (q, want) in [
        ("service=%FF", 200),
        ("service=%00", 200),
        ("severity=%C3%28", 200),
        ("limit=%00", 400),
    ] {
        let r = d.get(&format!("/v0/pipes/recent_logs.json?{q}"));
        assert_eq!(r.status, want, "{q}: {}", r.text());
        if r.status == 400 {
            r.assert_json_error();
        }
    }
    // Bytes HTTP forbids in a request target or header are a 400; obs-text
    // (bytes >= 0x80) in a header value is legal HTTP and ignored.
    for (raw, want) in [
        (&b"GET /v0/pipes/recent_logs.json?service=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..], 400),
        (b"GET /v0/health\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
        (b"GET /v0/health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\nConnection: close\r\n\r\n", 400),
        (b"GET /v0/health HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\r\nConnection: close\r\n\r\n", 200),
        (b"\x00\x01\x02\x03\r\n\r\n", 400),
    ] {
        let r = d.raw(raw);
        assert!(
            r.status == want,
            "{:?}: {} {}",
            String::from_utf8_lossy(raw),
            r.status,
            r.text()
        );
        if r.status >= 400 {
            r.assert_json_error();
        }
    }
    let mut ids = all_ids(&d);
    ids.sort();
    assert_eq!(ids, ["a\u{0}b", "deep-field", "g1", "g2", "g3"]);
    assert_eq!(d.row_count("system_logs_quarantine"), 5);
    assert_healthy(&d);
}

/// Gzip members concatenated: `members` x 1 MiB of newlines when inflated.
fn gzip_bomb(members: usize) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'\n'; 1 << 20]).unwrap();
    let member = e.finish().unwrap();
    member.repeat(members)
}

#[test]
fn gzip_bomb_is_refused_with_bounded_memory() {
    let d = Daemon::start();
    let gz = [("Content-Encoding", "gzip")];
    // A small gzip body works.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(format!("{}\n", good_line("gz")).as_bytes())
        .unwrap();
    let small = e.finish().unwrap();
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs&wait=true",
        Some(&d.token),
        &gz,
        Some(&small),
    );
    assert_eq!(counts(&r.ok_json()), (1, 0));
    // 1.1 GiB of newlines in about 1 MiB: over the 100 MiB default limit.
    let bomb = gzip_bomb(1100);
    assert!(bomb.len() < 10 << 20);
    let before = proc_status_kb(d.pid(), "RssAnon").unwrap();
    let t0 = Instant::now();
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&d.token),
        &gz,
        Some(&bomb),
    );
    r.assert_error(413);
    let elapsed = t0.elapsed();
    let peak = proc_status_kb(d.pid(), "VmHWM").unwrap();
    // Decompression stops at the limit: the peak is the limit plus change,
    // never the bomb's size.
    assert!(
        peak < 400 * 1024,
        "peak RSS {peak} kB while refusing a gzip bomb"
    );
    // Invalid gzip: 400.
    d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&d.token),
        &gz,
        Some(b"\x1f\x8bnot gzip at all"),
    )
    .assert_error(400);
    assert_eq!(all_ids(&d), ["gz"]);
    let after = proc_status_kb(d.pid(), "RssAnon").unwrap();
    println!(
        "hostile_input: gzip bomb of {} KiB (1.1 GiB inflated) refused with 413 in {elapsed:?}; daemon RssAnon {before} kB before, {after} kB after, peak RSS {peak} kB",
        bomb.len() >> 10
    );
    assert_healthy(&d);
}

/// Whether the server closed `s` (EOF or reset) or answered, within `limit`.
/// Returns the elapsed time and any response bytes.
fn wait_closed(s: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>, bool) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (t0.elapsed(), got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (t0.elapsed(), got, true),
        }
    }
    (t0.elapsed(), got, false)
}

#[test]
fn slow_and_idle_clients_are_timed_out_while_others_are_served() {
    let d = Daemon::options()
        .arg("--request-timeout-ms")
        .arg("1000")
        .start();
    d.ingest("system_logs", &[tagged_row("warm", SEED_TS)], true);
    let baseline = fd_count(d.pid());
    let head = |len: usize| {
        format!(
            "POST /v0/events?name=system_logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {len}\r\n\r\n",
            d.token
        )
    };
    let results = std::thread::scope(|s| {
        // Slow body: headers at once, then a byte every 300 ms.
        let slow_body = s.spawn(|| {
            let body = format!("{}\n", good_line("slow-body"));
            let mut c = TcpStream::connect(d.addr).unwrap();
            c.write_all(head(body.len()).as_bytes()).unwrap();
            let t0 = Instant::now();
            let mut answer = Vec::new();
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            for b in body.bytes() {
                if c.write_all(&[b]).is_err() {
                    break;
                }
                let mut buf = [0u8; 4096];
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if parse_complete(&answer).is_some() {
                            break;
                        }
                    }
                    Err(_) => {}
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
            (t0.elapsed(), answer)
        });
        // Slow headers: a byte of a header every 500 ms, never finished.
        let slow_headers = s.spawn(|| {
            let mut c = TcpStream::connect(d.addr).unwrap();
            c.write_all(b"POST /v0/events?name=system_logs HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let t0 = Instant::now();
            let mut got = Vec::new();
            let mut closed = false;
            for b in b"X-Slow: ".iter().chain([b'a'; 64].iter()).cycle() {
                if c.write_all(&[*b]).is_err() {
                    closed = true;
                    break;
                }
                let mut buf = [0u8; 1024];
                match c.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
                if t0.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
            (t0.elapsed(), got, closed)
        });
        // Idle: connects and sends nothing.
        let idle = s.spawn(|| {
            let mut c = TcpStream::connect(d.addr).unwrap();
            wait_closed(&mut c, Duration::from_secs(20))
        });
        // Half a request line, then nothing.
        let stalled = s.spawn(|| {
            let mut c = TcpStream::connect(d.addr).unwrap();
            c.write_all(b"GET /v0/hea").unwrap();
            wait_closed(&mut c, Duration::from_secs(20))
        });
        // Meanwhile, everyone else is served promptly.
        let mut worst = Duration::ZERO;
        let t0 = Instant::now();
        let mut n = 0;
        while t0.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            assert_eq!(d.get("/v0/health").status, 200);
            d.ingest(
                "system_logs",
                &[tagged_row(&format!("ok{n}"), SEED_TS)],
                false,
            );
            worst = worst.max(t.elapsed());
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        // Served behind the slow clients (one at a time) would take the
        // 10 s header timeout; a loaded 2-core debug run takes well under 5.
        assert!(
            worst < Duration::from_secs(5),
            "a request took {worst:?} while slow clients were connected"
        );
        (
            slow_body.join().unwrap(),
            slow_headers.join().unwrap(),
            idle.join().unwrap(),
            stalled.join().unwrap(),
            n,
        )
    });
    let ((body_t, body_answer), (hdr_t, hdr_got, hdr_closed), idle, stalled, served) = results;
    let r = parse_complete(&body_answer).unwrap_or_else(|| {
        panic!(
            "slow body: no answer after {body_t:?}: {:?}",
            String::from_utf8_lossy(&body_answer)
        )
    });
    assert_eq!(r.status, 400, "slow body");
    r.assert_json_error();
    assert!(
        body_t < Duration::from_secs(4),
        "slow body answered after {body_t:?} (request timeout 1 s)"
    );
    for (what, (t, got, closed)) in [
        ("slow headers", (hdr_t, hdr_got, hdr_closed)),
        ("idle connection", idle),
        ("half a request line", stalled),
    ] {
        assert!(
            closed,
            "{what}: connection still open after {t:?} (header timeout 10 s)"
        );
        assert!(
            t < Duration::from_secs(14),
            "{what}: closed only after {t:?}"
        );
        // hyper's header timeout closes these without an answer.
        assert!(
            got.is_empty(),
            "{what}: answered {:?}",
            String::from_utf8_lossy(&got)
        );
        println!("hostile_input: {what}: closed by the daemon after {t:?}");
    }
    println!("hostile_input: slow body answered {} after {body_t:?}; {served} other requests served meanwhile", r.status);
    let ids = all_ids(&d);
    assert!(!ids.iter().any(|i| i == "slow-body"));
    assert_eq!(d.row_count("system_logs"), 1 + served as u64);
    assert_fds_back(&d, baseline, "after slow clients");
    assert_healthy(&d);
}

/// Raises this process's open-files soft limit towards `n`; returns the
/// limit in force.
fn raise_nofile(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            }
        }
    }
    lim.rlim_cur
}

#[test]
fn two_thousand_concurrent_connections_are_each_answered() {
    const WANTED: usize = 2000;
    // Both processes need a descriptor per connection (the daemon raises its
    // own soft limit to the hard one, which is the same for both here).
    let limit = raise_nofile(WANTED as u64 + 512) as usize;
    let conns_n = WANTED.min(limit.saturating_sub(200));
    if conns_n < WANTED {
        println!(
            "hostile_input: open-files limit {limit}: {conns_n} connections instead of {WANTED}"
        );
    }
    // Opening thousands of connections can take seconds on a loaded
    // machine: the first must not reach the header read timeout meanwhile.
    let d = Daemon::options()
        .arg("--max-connections")
        .arg("4096")
        .arg("--header-read-timeout-ms")
        .arg("60000")
        .start();
    d.ingest("system_logs", &[tagged_row("warm", SEED_TS)], true);
    let baseline = fd_count(d.pid());
    let t0 = Instant::now();
    // All connections open at once, then a request on each, then the answers.
    let mut conns: Vec<TcpStream> = (0..conns_n)
        .map(|i| TcpStream::connect(d.addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    let peak_fds = {
        std::thread::sleep(Duration::from_millis(200));
        fd_count(d.pid())
    };
    for (i, c) in conns.iter_mut().enumerate() {
        let req = match i % 3 {
            0 => {
                let body = format!("{}\n", good_line(&format!("conn{i}")));
                format!(
                    "POST /v0/events?name=system_logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    d.token,
                    body.len()
                )
            }
            1 => format!(
                "GET /v0/pipes/error_distribution.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                d.token
            ),
            _ => "GET /v0/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
        };
        c.write_all(req.as_bytes()).unwrap();
    }
    let mut acked = Vec::new();
    let (mut ok, mut limited) = (0, 0);
    for (i, c) in conns.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let r = parse_complete(&buf).unwrap_or_else(|| {
            panic!(
                "connection {i}: no complete answer: {:?}",
                String::from_utf8_lossy(&buf)
            )
        });
        match (i % 3, r.status) {
            (0, 202) => {
                assert_eq!(counts(&r.json()), (1, 0));
                acked.push(format!("conn{i}"));
                ok += 1;
            }
            (0, 429) => {
                // Over the ingest concurrency limit: refused, with the headers
                // clients need, and nothing stored.
                r.assert_json_error();
                for h in [
                    "retry-after",
                    "x-ratelimit-limit",
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                ] {
                    assert!(r.header(h).is_some(), "429 without {h}");
                }
                limited += 1;
            }
            (1, 200) => {
                let v: Value = r.json();
                assert!(v["data"].is_array());
                ok += 1;
            }
            (2, 200) => {
                assert_eq!(r.json()["status"], "ok");
                ok += 1;
            }
            (k, s) => panic!("connection {i} (kind {k}): status {s}: {}", r.text()),
        }
    }
    let elapsed = t0.elapsed();
    drop(conns);
    let mut ids = all_ids(&d);
    ids.retain(|i| i != "warm");
    ids.sort();
    acked.sort();
    assert_eq!(ids, acked, "acknowledged rows and stored rows differ");
    assert_fds_back(&d, baseline, "after 2000 connections");
    assert_healthy(&d);
    println!(
        "hostile_input: {conns_n} concurrent connections answered in {elapsed:?}: {ok} ok, {limited} ingest requests refused with 429 (limit of concurrent event requests); daemon fds {baseline} -> {peak_fds} -> back to {}",
        fd_count(d.pid())
    );
}
