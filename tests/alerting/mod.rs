//! Real receivers for the alert tests: Debian's `prometheus-alertmanager`
//! started on loopback, and small webhook servers (tiny_http) that record
//! what they get.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::free_port;

/// The Alertmanager binary: `LP_ALERTMANAGER`, or Debian's path, or on PATH.
pub fn alertmanager_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LP_ALERTMANAGER") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether a test without its tool must fail (CI) rather than skip.
pub fn require_tools() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A running Alertmanager with a temporary config and storage.
pub struct Alertmanager {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one, or `None` (skip) when it is not installed outside CI.
    pub fn start() -> Option<Alertmanager> {
        let Some(bin) = alertmanager_binary() else {
            assert!(
                !require_tools(),
                "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
            );
            eprintln!("SKIPPED: prometheus-alertmanager is not installed");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("am.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn alertmanager");
        let am = Alertmanager {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let t0 = Instant::now();
        while ureq::get(&format!("{}/-/ready", am.base)).call().is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "alertmanager not ready: {}",
                std::fs::read_to_string(am._dir.path().join("am.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(am)
    }

    /// Active (not resolved) alerts whose label `service` is `service`, read
    /// back through Alertmanager's API v2.
    pub fn alerts(&self, service: &str) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts", self.base);
        let v: Value = ureq::get(&url)
            .query("filter", &format!("service=\"{service}\""))
            .call()
            .expect("GET /api/v2/alerts")
            .into_json()
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request a webhook server got.
#[derive(Clone, Debug)]
pub struct Hook {
    pub at: Instant,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl Hook {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

/// A webhook receiver on loopback that answers 200 after `delay`.
pub struct WebhookServer {
    pub url: String,
    pub got: Arc<Mutex<Vec<Hook>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookServer {
    pub fn start(port: u16, delay: Duration) -> WebhookServer {
        let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind webhook"));
        let port = server.server_addr().to_ip().unwrap().port();
        let got: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let (s, g) = (server.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let signature = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("X-Logpulse-Signature"))
                    .map(|h| h.value.to_string());
                std::thread::sleep(delay);
                g.lock().unwrap().push(Hook {
                    at: Instant::now(),
                    signature,
                    body,
                });
                let _ = req.respond(tiny_http::Response::from_string("ok"));
            }
        });
        WebhookServer {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            server,
            thread: Some(thread),
        }
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a payload with `status` that names `service` arrived.
    pub fn wait_for(&self, status: &str, service: &str, timeout: Duration) -> Option<Hook> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(h) = self.hooks().into_iter().find(|h| {
                let v = h.json();
                v["status"] == status
                    && v["alerts"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["labels"]["service"] == service))
            }) {
                return Some(h);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
