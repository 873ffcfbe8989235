//! Proves `tls_cert_file`/`tls_key_file` serve the API over HTTPS and `syslog_tls_listen` takes RFC 5425 syslog, verified by clients with a throwaway CA the test makes (openssl), and that SIGHUP reloads the certificate for new connections without dropping open ones (tests/py/tls.py: Python's ssl and the OpenTelemetry OTLP exporter).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server certificate for 127.0.0.1 and localhost, signed by the CA, with `serial`.
fn server_cert(dir: &Path, serial: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "srv.key.new",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            "2",
            "-out",
            "srv.pem.new",
            "-extfile",
            "ext",
        ],
    );
    std::fs::rename(dir.join("srv.key.new"), dir.join("srv.key")).unwrap();
    std::fs::rename(dir.join("srv.pem.new"), dir.join("srv.pem")).unwrap();
}

#[test]
fn https_and_syslog_tls_with_reload_on_sighup() {
    let py = std::env::var("LP_PYTHON").unwrap_or_else(|_| "python3".into());
    let have = Command::new(&py)
        .args(["-c", "import opentelemetry.exporter.otlp.proto.http"])
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl or the OTLP exporter is missing"
        );
        println!("SKIPPED: openssl or the OTLP exporter is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=logpulse test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    server_cert(d, "1001");
    let (port, sport) = (free_port(), free_port());
    let token = format!("admin-{}", random_token());
    let mut daemon = Command::new(binary())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--syslog-tls-listen",
            &format!("127.0.0.1:{sport}"),
        ])
        .arg("--data-dir")
        .arg(d.join("data"))
        .arg("--tls-cert-file")
        .arg(d.join("srv.pem"))
        .arg("--tls-key-file")
        .arg(d.join("srv.key"))
        .args(["--min-free-disk-bytes", TEST_MIN_FREE_DISK_BYTES])
        .env("LOGPULSE_ADMIN_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    // Ready once the port takes connections.
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 30, "logpulsed did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut child = Command::new(&py)
        .arg(tests_dir().join("py").join("tls.py"))
        .args([
            &port.to_string(),
            &token,
            d.join("ca.pem").to_str().unwrap(),
            &sport.to_string(),
            "first",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // requests prefers these over the CA the exporter is given.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("serial "),
        "tls.py: {line:?}\n{}",
        std::fs::read_to_string(d.join("daemon.log")).unwrap()
    );
    server_cert(d, "2002");
    send_signal(daemon.id(), "HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = child.wait().unwrap();
    let log = std::fs::read_to_string(d.join("daemon.log")).unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        st.success(),
        "tls.py failed: {line}{rest}\n--- daemon log ---\n{log}"
    );
    assert!(rest.contains("tls: all checks passed"), "{rest}");
    assert!(log.contains("tls certificate reloaded"), "{log}");
}

/// `kill -SIG pid`, through the kill command.
fn send_signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
