//! `logpulse-replay --url` against a scripted HTTP server: it posts batches of lines in order with the token, waits out `429`/`503` `Retry-After` and sends the same batch again, sends a batch again whole only when no answer came (so the daemon may store it twice: at-least-once), and on a refusal stops with the line to resume from, which `--from-line` then resumes exactly.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// What the server does with the n-th request (0-based); later ones get 202.
#[derive(Clone, Copy, Debug)]
enum Act {
    Accept,
    Status(u16, u32),
    Hangup,
    /// 202 with a body that is not the Events API's answer.
    Garbled,
}

#[derive(Default)]
struct Seen {
    /// (path and query, authorization, body) of every request read.
    requests: Vec<(String, String, String)>,
}

fn serve(script: Vec<Act>) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            if !handle(conn, &script, &s2) {
                continue;
            }
        }
    });
    (url, seen)
}

/// Serves requests of one connection; false when it hung up on purpose.
fn handle(conn: TcpStream, script: &[Act], seen: &Mutex<Seen>) -> bool {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return true;
        }
        let target = line.split(' ').nth(1).unwrap_or("").to_string();
        let (mut len, mut auth) = (0usize, String::new());
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "authorization" => auth = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        let n = {
            let mut s = seen.lock().unwrap();
            s.requests.push((target, auth, body.clone()));
            s.requests.len() - 1
        };
        let rows = body.lines().filter(|l| !l.trim().is_empty()).count();
        let reply = match script.get(n).copied().unwrap_or(Act::Accept) {
            Act::Hangup => return false,
            Act::Garbled => {
                "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok".to_string()
            }
            Act::Accept => format!(
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body_json(rows).len(),
                body_json(rows)
            ),
            Act::Status(code, after) => {
                let b = format!("{{\"error\":\"scripted {code}\"}}");
                format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nRetry-After: {after}\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                )
            }
        };
        w.write_all(reply.as_bytes()).unwrap();
    }
}

fn body_json(rows: usize) -> String {
    format!("{{\"successful_rows\":{rows},\"quarantined_rows\":0}}")
}

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{{\"timestamp\":{},\"service\":\"s\",\"severity\":\"INFO\",\"message\":\"m{i}\"}}",
                BASE + i as u32
            )
        })
        .collect()
}

#[test]
fn waits_resends_and_delivers_every_batch_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.ndjson");
    let all = lines(50);
    write_lines(&f, &all);
    // Batch 0 is refused with 429 (wait 1 s), then hung up on (no answer:
    // sent again), then 503 (wait 0 s); then everything is accepted.
    let (url, seen) = serve(vec![Act::Status(429, 1), Act::Hangup, Act::Status(503, 0)]);
    let t0 = Instant::now();
    let out = run(
        replay_bin(),
        &[
            "--url",
            &url,
            "--token",
            "tok",
            "--datasource",
            "system_logs",
            "--batch-rows",
            "20",
            path_str(&f),
        ],
        0,
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    let summary = stdout(&out);
    assert!(
        summary.contains("50 rows stored, 0 quarantined"),
        "{summary}"
    );
    assert!(summary.contains("1 batches resent"), "{summary}");
    let seen = seen.lock().unwrap();
    let bodies: Vec<&str> = seen.requests.iter().map(|r| r.2.as_str()).collect();
    let batch = |a: usize, b: usize| all[a..b].join("\n") + "\n";
    // Four attempts of the first batch, whole each time, then the other two.
    assert_eq!(bodies.len(), 6, "{bodies:?}");
    for b in &bodies[..4] {
        assert_eq!(*b, batch(0, 20));
    }
    assert_eq!(bodies[4], batch(20, 40));
    assert_eq!(bodies[5], batch(40, 50));
    for (target, auth, _) in seen.requests.iter() {
        assert_eq!(target, "/v0/events?name=system_logs");
        assert_eq!(auth, "Bearer tok");
    }
}

#[test]
fn a_refusal_stops_with_the_line_to_resume_from() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.ndjson");
    let all = lines(45);
    write_lines(&f, &all);
    // The third batch (lines 20..30) is refused for good.
    let (url, seen) = serve(vec![Act::Accept, Act::Accept, Act::Status(403, 0)]);
    let out = run(
        replay_bin(),
        &[
            "--url",
            &url,
            "--token",
            "t",
            "--datasource",
            "system_logs",
            "--batch-rows",
            "10",
            path_str(&f),
        ],
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("scripted 403"), "{err}");
    assert!(err.contains("resume with --from-line 20"), "{err}");
    assert_eq!(seen.lock().unwrap().requests.len(), 3);

    let (url, seen) = serve(vec![]);
    let out = run(
        replay_bin(),
        &[
            "--url",
            &url,
            "--token",
            "t",
            "--datasource",
            "system_logs",
            "--batch-rows",
            "10",
            "--from-line",
            "20",
            path_str(&f),
        ],
        0,
    );
    assert!(stdout(&out).contains("25 rows stored"), "{}", stdout(&out));
    let got: String = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(got, all[20..].join("\n") + "\n");
}

#[test]
fn no_answer_at_all_gives_up_after_the_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.ndjson");
    write_lines(&f, &lines(5));
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        replay_bin(),
        &[
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "t",
            "--datasource",
            "system_logs",
            "--retries",
            "2",
            path_str(&f),
        ],
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not delivered after 2 attempts") && err.contains("--from-line 0"),
        "{err}"
    );
}

#[test]
fn an_unreadable_acceptance_stops_after_that_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.ndjson");
    write_lines(&f, &lines(25));
    let (url, seen) = serve(vec![Act::Accept, Act::Garbled]);
    let out = run(
        replay_bin(),
        &[
            "--url",
            &url,
            "--token",
            "t",
            "--datasource",
            "system_logs",
            "--batch-rows",
            "10",
            path_str(&f),
        ],
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("accepted but its answer is unreadable"),
        "{err}"
    );
    // The garbled batch was stored: resume after it, not at it.
    assert!(err.contains("resume with --from-line 20"), "{err}");
    assert_eq!(seen.lock().unwrap().requests.len(), 2);
}
