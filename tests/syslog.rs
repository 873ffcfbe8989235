//! Proves the syslog listeners take what real senders send: util-linux `logger` (RFC 5424 over TCP with octet counting, and UDP), Debian's rsyslog forwarding over TCP (octet-counted RFC 5424) and UDP, newline-framed RFC 3164 over TCP; every mapped column is read back through recent_logs, and a slow writer never makes the daemon buffer without bound.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn syslog_daemon() -> (Daemon, u16, u16) {
    let (tcp, udp) = (free_port(), free_port());
    let d = Daemon::options()
        .arg("--syslog-tcp-listen")
        .arg(format!("127.0.0.1:{tcp}"))
        .arg("--syslog-udp-listen")
        .arg(format!("127.0.0.1:{udp}"))
        .start();
    (d, tcp, udp)
}

/// The rows of a service once `want` arrived (syslog has no answer to wait for).
fn rows(d: &Daemon, service: &str, want: usize) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let v = d.pipe_json(
            "recent_logs",
            &[
                ("service", service),
                ("start_time", "1970-01-01 00:00:00"),
                ("limit", "1000"),
            ],
        );
        let rows = v["data"].as_array().unwrap().clone();
        if rows.len() >= want || t0.elapsed() > Duration::from_secs(20) {
            assert_eq!(rows.len(), want, "{service}: {rows:?}");
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tool a test needs; under CI a missing one fails the test.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed (.ci/run installs it)"
        );
        println!("SKIPPED: {tool} is not installed");
    }
    ok
}

#[test]
fn util_linux_logger_over_tcp_octet_counted_and_udp() {
    if !have("logger") {
        return;
    }
    let (d, tcp, udp) = syslog_daemon();
    for (mode, tag, prio) in [
        ("--tcp", "logger-tcp", "local3.err"),
        ("--udp", "logger-udp", "user.warning"),
    ] {
        let port = if mode == "--tcp" { tcp } else { udp };
        let mut args = vec!["--rfc5424", mode, "-n", "127.0.0.1", "-P"];
        let port = port.to_string();
        args.push(&port);
        if mode == "--tcp" {
            args.push("--octet-count");
        }
        args.extend([
            "-t",
            tag,
            "-p",
            prio,
            "--sd-id",
            "zoo@123",
            "--sd-param",
            "tiger=\"hungry\"",
            "--msgid",
            "M1",
            "first message",
        ]);
        let st = Command::new("logger").args(&args).status().unwrap();
        assert!(st.success(), "logger {args:?}");
        let got = rows(&d, tag, 1);
        let r = &got[0];
        assert_eq!(r["message"], "first message");
        assert_eq!(
            r["severity"],
            if mode == "--tcp" { "ERROR" } else { "WARN" }
        );
        assert!(
            (parse_ts(r["timestamp"].as_str().unwrap()).unwrap() - now_secs()).abs() < 60,
            "{r}"
        );
        assert!(!r["server_id"].as_str().unwrap().is_empty());
        let meta: Value = serde_json::from_str(r["metadata"].as_str().unwrap()).unwrap();
        assert_eq!(
            meta["facility"],
            if mode == "--tcp" { "local3" } else { "user" },
            "{meta}"
        );
        assert_eq!(meta["msgid"], "M1");
        assert_eq!(
            meta["structured_data"]["zoo@123"]["tiger"], "hungry",
            "{meta}"
        );
        assert!(
            meta["procid"]
                .as_str()
                .is_none_or(|p| p.chars().all(|c| c.is_ascii_digit())),
            "{meta}"
        );
    }
}

#[test]
fn rsyslog_forwards_over_tcp_octet_counted_and_udp() {
    if !have("rsyslogd") {
        return;
    }
    let (d, tcp, udp) = syslog_daemon();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log.sock");
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{w}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{s}" CreatePath="on")
action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
"#,
            w = dir.path().display(),
            s = sock.display()
        ),
    )
    .unwrap();
    let mut rs = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsyslogd");
    let t0 = Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("logger")
        .args(["-u"])
        .arg(&sock)
        .args([
            "-t",
            "rsys-app",
            "-p",
            "daemon.crit",
            "forwarded by rsyslog",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // One message, forwarded twice: once over TCP, once over UDP.
    let got = rows(&d, "rsys-app", 2);
    let _ = rs.kill();
    let _ = rs.wait();
    for r in &got {
        assert_eq!(r["message"], "forwarded by rsyslog");
        assert_eq!(r["severity"], "CRITICAL");
        assert!(!r["server_id"].as_str().unwrap().is_empty());
        let meta: Value = serde_json::from_str(r["metadata"].as_str().unwrap()).unwrap();
        assert_eq!(meta["facility"], "daemon", "{meta}");
    }
}

#[test]
fn newline_framed_rfc3164_and_a_bad_frame_over_tcp() {
    let (d, tcp, _) = syslog_daemon();
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(
        b"<30>Oct 11 22:14:15 mymachine nl-app[42]: su root failed\n<27>nl-app: short form\n<13>\n",
    )
    .unwrap();
    drop(s);
    let got = rows(&d, "nl-app", 2);
    let short = got.iter().find(|r| r["message"] == "short form").unwrap();
    assert_eq!(short["severity"], "ERROR");
    assert_eq!(short["server_id"], "127.0.0.1");
    let long = got
        .iter()
        .find(|r| r["message"] == "su root failed")
        .unwrap();
    assert_eq!(long["severity"], "INFO");
    assert_eq!(long["server_id"], "mymachine");
    assert!(
        long["timestamp"]
            .as_str()
            .unwrap()
            .ends_with("-10-11 22:14:15"),
        "{long}"
    );
    // "<13>" alone has no tag, so no service: quarantined, not lost.
    let t0 = Instant::now();
    while d.row_count("system_logs_quarantine") < 1 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
}
