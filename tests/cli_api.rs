//! What Tinybird's `tb` CLI calls besides the Pipes and Events APIs:
//! `POST /v0/datasources?mode=append` (NDJSON and CSV, raw or multipart),
//! `GET /v0/pipes`, `GET /v0/pipes/<name>`, `GET /v0/user/workspaces/`,
//! `GET /v0/tokens` as the CLI lists it; and the real `tb` CLI
//! (tinybird-cli from PyPI, pinned, via tests/py/tb_cli.py with Python from
//! LP_PYTHON). Without tinybird-cli that test prints SKIPPED, and fails
//! under CI=true.

mod common;

use std::process::Command;

use common::*;

#[test]
fn datasource_append_takes_ndjson_and_csv_files() {
    let d = Daemon::start();
    // Raw NDJSON body, one bad row quarantined.
    let body = "{\"timestamp\":\"2024-06-01 10:00:00\",\"service\":\"a\",\"severity\":\"info\",\"message\":\"x\"}\n{\"message\":\"no service\"}\n";
    let v = d
        .post(
            "/v0/datasources?mode=append&name=system_logs&format=ndjson",
            body.as_bytes(),
        )
        .ok_json();
    assert_eq!(v["datasource"]["name"], "system_logs");
    assert_eq!(v["blocks"][0]["process_return"][0]["lines"], 1);
    assert_eq!(v["quarantine_rows"], 1);
    assert_eq!(d.row_count("system_logs"), 1);
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
    // Multipart CSV, as the tb CLI and verdin send a file.
    let boundary = "XyZ";
    let csv = "timestamp,service,severity,message\n2024-06-01 10:00:01,b,WARN,\"hello, csv\"\n";
    let mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"csv\"\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let r = d.request(
        "POST",
        "/v0/datasources?mode=append&name=system_logs",
        Some(&d.token),
        &[(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
        Some(mp.as_bytes()),
    );
    assert_eq!(
        r.ok_json()["blocks"][0]["process_return"][0]["parser"],
        "csv"
    );
    let v = d.pipe_json("recent_logs", &[("service", "b")]);
    assert_eq!(v["data"][0]["message"], "hello, csv");
    // Refused: url=, other modes, quarantines, and a token without APPEND.
    let msg = d
        .post(
            "/v0/datasources?mode=append&name=system_logs&url=http://example.com/x.csv",
            b"",
        )
        .assert_error(400);
    assert!(msg.contains("url"), "{msg}");
    d.post("/v0/datasources?mode=replace&name=system_logs", b"x")
        .assert_error(400);
    d.post(
        "/v0/datasources?mode=append&name=system_logs_quarantine",
        b"{}",
    )
    .assert_error(400);
    d.post("/v0/datasources?mode=append&name=nope", b"{}")
        .assert_error(404);
    let reader = d.create_token("r", &["DATASOURCES:READ:system_logs"]);
    let r = d.post_as(
        "/v0/datasources?mode=append&name=system_logs",
        Some(&reader),
        body.as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(d.row_count("system_logs"), 2);
}

#[test]
fn catalog_routes_the_cli_reads() {
    let d = Daemon::start();
    let v = d.get("/v0/datasources").ok_json();
    let created = v["datasources"][0]["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        created.len(),
        "2024-06-01 10:00:00.000000".len(),
        "{created}"
    );
    let v = d.get("/v0/pipes").ok_json();
    let names: Vec<&str> = v["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "recent_logs",
            "error_distribution",
            "log_anomalies",
            "log_baseline_anomalies",
            "log_timeseries",
            "anomaly_thresholds"
        ]
    );
    let p = d.get("/v0/pipes/log_timeseries").ok_json();
    assert!(p["nodes"][0]["sql"]
        .as_str()
        .unwrap()
        .contains("toStartOfInterval"));
    let p = d.get("/v0/pipes/anomaly_thresholds").ok_json();
    assert_eq!(p["nodes"][0]["dependencies"][0], "log_anomaly_thresholds");
    let p = d.get("/v0/pipes/log_anomalies").ok_json();
    assert!(p["nodes"][0]["sql"]
        .as_str()
        .unwrap()
        .contains("HAVING log_count"));
    assert!(p["params"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "time_window_minutes"));
    let p = d.get("/v0/pipes/log_baseline_anomalies").ok_json();
    assert!(p["params"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "baseline_hours"));
    d.get("/v0/pipes/nope").assert_error(404);
    let ws = d
        .get("/v0/user/workspaces/?with_environments=true")
        .ok_json();
    let id = d.get("/v0/workspace").ok_json()["id"].clone();
    assert_eq!(ws["workspaces"][0]["id"], id);
    let toks = d.get("/v0/tokens").ok_json();
    assert_eq!(toks["tokens"][0]["name"], "admin token");
    let pipe = d.create_token("p", &["PIPES:READ:recent_logs"]);
    let v = d.get_as("/v0/pipes", Some(&pipe)).ok_json();
    assert_eq!(v["pipes"].as_array().unwrap().len(), 1);
    assert_eq!(
        d.get_as("/v0/pipes/error_distribution", Some(&pipe)).status,
        403
    );
}

#[test]
fn tb_cli_works_unchanged() {
    let py = match python_with("tinybird.tb_cli") {
        Ok(py) => py,
        Err(why) => return skip(&why),
    };
    let tb = std::path::Path::new(&py).with_file_name("tb");
    if !tb.exists() {
        return skip(&format!("no tb executable beside {py}"));
    }
    let d = Daemon::start();
    let script = tests_dir().join("py").join("tb_cli.py");
    run_script(
        Command::new(&py)
            .arg(&script)
            .arg(&tb)
            .arg(&d.base)
            .arg(&d.token),
        "tb cli: all checks passed",
    );
}
