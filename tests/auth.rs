//! Proves authentication and authorization: 401 without a token, 403 with a bad one or a missing scope (and nothing written), Bearer header and `?token=` both work, scoped tokens from the Tokens API are enforced on every route, listed, deleted, persist across restarts and crashes, and a generated admin token lands in `<data-dir>/admin-token` with mode 0600.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::{json, Value};

/// Every route that needs a token: (method, path, body).
fn protected_routes() -> Vec<(&'static str, &'static str, &'static [u8])> {
    vec![
        ("POST", "/v0/events?name=system_logs", b"{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"s\",\"severity\":\"E\",\"message\":\"m\"}"),
        ("POST", "/v0/events?name=log_anomaly_thresholds", b"{\"service\":\"s\",\"severity\":\"E\",\"threshold_per_minute\":1}"),
        ("GET", "/v0/pipes/recent_logs.json", b""),
        ("GET", "/v0/pipes/error_distribution.csv", b""),
        ("GET", "/v0/pipes/log_anomalies.ndjson", b""),
        ("GET", "/v0/pipes/log_baseline_anomalies.csv", b""),
        ("GET", "/v0/alerts", b""),
        ("GET", "/v0/pipes/log_timeseries.json", b""),
        ("GET", "/v0/pipes/anomaly_thresholds.json", b""),
        ("GET", "/v0/tail", b""),
        ("POST", "/v0/pipes/recent_logs.json", b"limit=1"),
        ("GET", "/v0/datasources", b""),
        ("GET", "/v0/datasources/system_logs", b""),
        ("POST", "/v0/datasources/system_logs/truncate", b""),
        ("GET", "/v0/tokens", b""),
        ("POST", "/v0/tokens?name=x&scope=PIPES:READ:recent_logs", b""),
        ("DELETE", "/v0/tokens/x", b""),
        ("GET", "/v0/workspace", b""),
        ("GET", "/metrics", b""),
        ("GET", "/v0/pipes", b""),
        ("GET", "/v0/pipes/recent_logs", b""),
        ("GET", "/v0/user/workspaces/", b""),
        ("GET", "/v0/sql?q=SELECT%20count()%20FROM%20system_logs", b""),
        ("POST", "/v0/sql", b"SELECT count() FROM system_logs"),
        ("POST", "/v0/datasources?mode=append&name=system_logs", b"{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"s\",\"severity\":\"E\",\"message\":\"m\"}"),
    ]
}

fn send(d: &Daemon, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
    let body = if method == "GET" || method == "DELETE" {
        None
    } else {
        Some(body)
    };
    d.request(method, path, token, &[], body)
}

#[test]
fn no_token_is_401_and_a_bad_token_is_403_everywhere() {
    let d = Daemon::start();
    for (m, p, b) in protected_routes() {
        let r = send(&d, m, p, None, b);
        r.assert_error(401);
        let r = send(&d, m, p, Some("not-a-token"), b);
        r.assert_error(403);
        let sep = if p.contains('?') { '&' } else { '?' };
        let r = send(&d, m, &format!("{p}{sep}token=wrong"), None, b);
        r.assert_error(403);
        // An empty token is no token.
        let r = send(&d, m, &format!("{p}{sep}token="), None, b);
        r.assert_error(401);
    }
    // A prefix or an extension of the admin token is not the admin token.
    let half = &d.token[..d.token.len() / 2];
    send(&d, "GET", "/v0/datasources", Some(half), b"").assert_error(403);
    send(
        &d,
        "GET",
        "/v0/datasources",
        Some(&format!("{}x", d.token)),
        b"",
    )
    .assert_error(403);
    // Health needs none.
    let r = d.get_as("/v0/health", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    // Nothing was written, no token was created.
    assert_eq!(d.row_count("system_logs"), 0);
    assert_eq!(d.row_count("log_anomaly_thresholds"), 0);
    assert_eq!(token_names(&d), Vec::<String>::new());
}

#[test]
fn bearer_header_and_token_parameter_both_work() {
    let d = Daemon::start();
    let row = log_row("2023-06-01 14:30:00", "both", "INFO", "x").to_string();
    let r = d.post_as(
        "/v0/events?name=system_logs",
        Some(&d.token),
        row.as_bytes(),
    );
    assert_eq!(r.status, 202);
    let r = d.post_as(
        &format!("/v0/events?name=system_logs&token={}", d.token),
        None,
        row.as_bytes(),
    );
    assert_eq!(r.status, 202);
    let r = d.get_as(
        &format!("/v0/pipes/recent_logs.json?token={}&service=both", d.token),
        None,
    );
    assert_eq!(r.ok_json()["rows"], 2);
    let r = d.get_as("/v0/pipes/recent_logs.json?service=both", Some(&d.token));
    assert_eq!(r.ok_json()["rows"], 2);
    // Token in a POST body of a pipe query.
    let r = d.post_as(
        "/v0/pipes/recent_logs.json",
        None,
        format!("token={}&service=both", d.token).as_bytes(),
    );
    assert_eq!(r.ok_json()["rows"], 2);
}

#[test]
fn scoped_tokens_are_enforced_on_every_route() {
    let d = Daemon::start();
    let append = d.create_token("appender", &["DATASOURCES:APPEND:system_logs"]);
    let read_ds = d.create_token("ds-reader", &["DATASOURCES:READ:system_logs"]);
    let pipe = d.create_token("pipe-reader", &["PIPES:READ:recent_logs"]);
    let multi = d.create_token(
        "multi",
        &[
            "PIPES:READ:error_distribution",
            "DATASOURCES:APPEND:log_anomaly_thresholds",
            "PIPES:READ:log_anomalies",
        ],
    );
    let row = log_row("2023-06-01 14:30:00", "sc", "INFO", "x").to_string();
    let th = json!({"service": "sc", "severity": "INFO", "threshold_per_minute": 1}).to_string();

    // (token, method, path, body, allowed)
    let cases: Vec<(&str, &str, &str, &[u8], bool)> = vec![
        (
            &append,
            "POST",
            "/v0/events?name=system_logs",
            row.as_bytes(),
            true,
        ),
        (
            &append,
            "POST",
            "/v0/events?name=log_anomaly_thresholds",
            th.as_bytes(),
            false,
        ),
        (&append, "GET", "/v0/pipes/recent_logs.json", b"", false),
        (
            &append,
            "POST",
            "/v0/datasources/system_logs/truncate",
            b"",
            false,
        ),
        (&append, "GET", "/v0/tokens", b"", false),
        (
            &append,
            "POST",
            "/v0/tokens?name=evil&scope=PIPES:READ:recent_logs",
            b"",
            false,
        ),
        (&append, "DELETE", "/v0/tokens/pipe-reader", b"", false),
        (&append, "GET", "/metrics", b"", false),
        (&read_ds, "GET", "/v0/datasources/system_logs", b"", true),
        (
            &read_ds,
            "POST",
            "/v0/sql",
            b"SELECT count() FROM system_logs",
            true,
        ),
        (
            &append,
            "POST",
            "/v0/sql",
            b"SELECT count() FROM system_logs",
            false,
        ),
        (
            &read_ds,
            "POST",
            "/v0/sql",
            b"SELECT count() FROM system_logs_quarantine",
            false,
        ),
        (
            &read_ds,
            "GET",
            "/v0/datasources/log_anomaly_thresholds",
            b"",
            false,
        ),
        (
            &read_ds,
            "POST",
            "/v0/events?name=system_logs",
            row.as_bytes(),
            false,
        ),
        (&read_ds, "GET", "/v0/pipes/recent_logs.json", b"", false),
        (
            &read_ds,
            "POST",
            "/v0/datasources/system_logs/truncate",
            b"",
            false,
        ),
        (&pipe, "GET", "/v0/pipes/recent_logs.json", b"", true),
        (&pipe, "GET", "/v0/pipes/recent_logs.csv", b"", true),
        (
            &pipe,
            "POST",
            "/v0/pipes/recent_logs.json",
            b"limit=1",
            true,
        ),
        (
            &pipe,
            "GET",
            "/v0/pipes/error_distribution.json",
            b"",
            false,
        ),
        (&pipe, "GET", "/v0/pipes/log_anomalies.json", b"", false),
        (&pipe, "GET", "/v0/pipes/log_timeseries.json", b"", false),
        (
            &pipe,
            "GET",
            "/v0/pipes/anomaly_thresholds.json",
            b"",
            false,
        ),
        (&pipe, "GET", "/v0/tail", b"", false),
        (&append, "GET", "/v0/tail", b"", false),
        (&read_ds, "GET", "/v0/pipes/log_timeseries.json", b"", false),
        (
            &pipe,
            "POST",
            "/v0/events?name=system_logs",
            row.as_bytes(),
            false,
        ),
        (&pipe, "GET", "/v0/datasources/system_logs", b"", false),
        (
            &multi,
            "GET",
            "/v0/pipes/error_distribution.json",
            b"",
            true,
        ),
        (&multi, "GET", "/v0/pipes/log_anomalies.json", b"", true),
        (
            &multi,
            "POST",
            "/v0/events?name=log_anomaly_thresholds",
            th.as_bytes(),
            true,
        ),
        (&multi, "GET", "/v0/pipes/recent_logs.json", b"", false),
        (
            &multi,
            "POST",
            "/v0/events?name=system_logs",
            row.as_bytes(),
            false,
        ),
    ];
    for (token, m, p, b, allowed) in &cases {
        for via_query in [false, true] {
            let r = if via_query {
                let sep = if p.contains('?') { '&' } else { '?' };
                send(&d, m, &format!("{p}{sep}token={token}"), None, b)
            } else {
                send(&d, m, p, Some(token), b)
            };
            if *allowed {
                assert!(
                    (200..300).contains(&r.status),
                    "{m} {p} should be allowed: {} {}",
                    r.status,
                    r.text()
                );
            } else {
                let msg = r.assert_error(403);
                assert!(!msg.contains(token), "error message leaks the token: {msg}");
            }
        }
    }
    // Only the allowed appends were written (2 each: header and query token).
    assert_eq!(d.row_count("system_logs"), 2);
    assert_eq!(d.row_count("log_anomaly_thresholds"), 2);
    // A scoped token listing data sources sees only its own.
    let v = d.get_as("/v0/datasources", Some(&read_ds)).ok_json();
    let names: Vec<&str> = v["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["system_logs"]);
    // Any valid token may read the workspace.
    assert_eq!(d.get_as("/v0/workspace", Some(&pipe)).status, 200);
    // The token list is unchanged by the refused attempts.
    let v = d.get("/v0/tokens").ok_json();
    // Four scoped tokens and the admin token (listed as Tinybird lists it).
    assert_eq!(v["tokens"].as_array().unwrap().len(), 5);
}

fn token_names(d: &Daemon) -> Vec<String> {
    let v = d.get("/v0/tokens").ok_json();
    let mut names: Vec<String> = v["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens array: {v}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .filter(|n| n != "admin token")
        .collect();
    names.sort();
    names
}

#[test]
fn tokens_api_creates_lists_and_deletes() {
    let d = Daemon::start();
    let r = d.post(
        "/v0/tokens?name=t1&scope=DATASOURCES:APPEND:system_logs&scope=PIPES:READ:recent_logs",
        b"",
    );
    let v = r.ok_json();
    assert_eq!(v["name"], "t1");
    let t1 = v["token"].as_str().unwrap().to_string();
    assert!(t1.len() >= 16, "token too short: {t1}");
    assert_ne!(t1, d.token);
    let scopes: Vec<(String, String)> = v["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["type"].as_str().unwrap().to_string(),
                s["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("DATASOURCES:APPEND".to_string(), "system_logs".to_string()),
            ("PIPES:READ".to_string(), "recent_logs".to_string())
        ]
    );
    let t2 = d.create_token("t2", &["DATASOURCES:READ:system_logs"]);
    assert_ne!(t1, t2);
    assert_eq!(token_names(&d), ["t1", "t2"]);
    let listed = d.get("/v0/tokens").ok_json();
    let l1 = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t1")
        .unwrap()
        .clone();
    assert_eq!(l1["token"], t1.as_str());

    // Bad requests.
    d.post("/v0/tokens?scope=PIPES:READ:recent_logs", b"")
        .assert_error(400);
    d.post("/v0/tokens?name=t3", b"").assert_error(400);
    d.post("/v0/tokens?name=t3&scope=ADMIN", b"")
        .assert_error(400);
    d.post("/v0/tokens?name=t3&scope=PIPES:WRITE:recent_logs", b"")
        .assert_error(400);
    let r = d.post("/v0/tokens?name=t1&scope=PIPES:READ:recent_logs", b"");
    assert_eq!(r.status, 400, "duplicate name");
    r.assert_json_error();
    assert_eq!(token_names(&d), ["t1", "t2"]);

    // Delete: the token stops working at once.
    let row = log_row("2023-06-01 14:30:00", "del", "INFO", "x").to_string();
    assert_eq!(
        d.post_as("/v0/events?name=system_logs", Some(&t1), row.as_bytes())
            .status,
        202
    );
    let r = d.request("DELETE", "/v0/tokens/t1", Some(&d.token), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json();
    d.post_as("/v0/events?name=system_logs", Some(&t1), row.as_bytes())
        .assert_error(403);
    assert_eq!(token_names(&d), ["t2"]);
    d.request("DELETE", "/v0/tokens/t1", Some(&d.token), &[], None)
        .assert_error(404);
    assert_eq!(d.row_count("system_logs"), 1);
}

#[test]
fn tokens_survive_restart_and_crash() {
    let mut d = Daemon::start();
    let keep = d.create_token("keep", &["PIPES:READ:recent_logs"]);
    let gone = d.create_token("gone", &["PIPES:READ:recent_logs"]);
    assert_eq!(
        d.request("DELETE", "/v0/tokens/gone", Some(&d.token), &[], None)
            .status,
        200
    );
    d.restart();
    assert_eq!(token_names(&d), ["keep"]);
    assert_eq!(
        d.get_as("/v0/pipes/recent_logs.json", Some(&keep)).status,
        200
    );
    d.get_as("/v0/pipes/recent_logs.json", Some(&gone))
        .assert_error(403);
    // Acknowledged token changes survive kill -9 too.
    let crash = d.create_token("crash", &["DATASOURCES:APPEND:system_logs"]);
    d.crash_restart();
    assert_eq!(token_names(&d), ["crash", "keep"]);
    let row = log_row("2023-06-01 14:30:00", "c", "INFO", "x").to_string();
    assert_eq!(
        d.post_as("/v0/events?name=system_logs", Some(&crash), row.as_bytes())
            .status,
        202
    );
    d.post_as("/v0/events?name=system_logs", Some(&keep), row.as_bytes())
        .assert_error(403);
}

#[test]
fn generated_admin_token_file_has_mode_0600_and_is_reused() {
    let mut d = Daemon::options().no_admin_token().start();
    let path = d.data_dir.join("admin-token");
    let meta = std::fs::metadata(&path).expect("admin-token file");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        path.display()
    );
    let token = d.token.clone();
    assert!(token.len() >= 16, "weak generated token {token:?}");
    // It is the admin token.
    assert_eq!(d.get("/v0/tokens").status, 200);
    assert_eq!(d.get("/v0/datasources").status, 200);
    d.get_as("/v0/datasources", None).assert_error(401);
    // Its path is logged; its value never is.
    let log = d.log();
    assert!(
        log.contains("admin-token"),
        "the admin token's path is not logged:\n{log}"
    );
    assert!(
        !log.contains(&token),
        "the admin token's value is logged:\n{log}"
    );
    // A restart keeps the same token.
    d.restart();
    assert_eq!(d.token, token);
    assert_eq!(d.get("/v0/tokens").status, 200);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn admin_token_from_a_config_file() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("logpulse.toml");
    let token = format!("from-file-{}", random_token());
    std::fs::write(&cfg, format!("admin_token = \"{token}\"\n")).unwrap();
    let d = Daemon::options()
        .admin_token_configured_elsewhere(&token)
        .arg("--config")
        .arg(cfg.to_str().unwrap())
        .start();
    assert_eq!(d.get("/v0/tokens").status, 200);
    assert_eq!(
        d.get_as("/v0/tokens", Some(&format!("{token}x"))).status,
        403
    );
    assert!(
        !d.data_dir.join("admin-token").exists(),
        "a configured token must not be replaced"
    );
    assert!(!d.log().contains(&token));
}

#[test]
fn configured_admin_token_writes_no_file_and_tokens_are_never_logged() {
    let d = Daemon::start();
    assert!(!d.data_dir.join("admin-token").exists());
    let scoped = d.create_token("quiet", &["PIPES:READ:recent_logs"]);
    // Tokens in query strings too.
    d.get_as(&format!("/v0/pipes/recent_logs.json?token={scoped}"), None);
    d.get_as(
        &format!("/v0/pipes/recent_logs.json?token={}", d.token),
        None,
    );
    d.get_as("/v0/pipes/recent_logs.json?token=wrong-token-value", None);
    let log = d.log();
    for t in [d.token.as_str(), scoped.as_str(), "wrong-token-value"] {
        assert!(!log.contains(t), "a token is in the log:\n{log}");
    }
    // tokens.json is private.
    let tokens = d.data_dir.join("tokens.json");
    if tokens.exists() {
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "tokens.json is readable by others: {mode:o}"
        );
    }
    let _: Value = d.get("/v0/tokens").ok_json();
}
