//! Harness shared by the black-box tests: starts the real `logpulsed` binary
//! on an ephemeral port over a temporary data dir, and talks HTTP to it.
//!
//! The binary is the `logpulsed` cargo builds for the test run
//! (`env!("CARGO_BIN_EXE_logpulsed")`: the root package owns it), or the
//! path in `LOGPULSED`.
#![allow(dead_code)]

pub mod clickhouse;
pub mod tmpfs;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

pub mod power_cut;

/// How long a daemon may take to answer `GET /v0/health` after spawning.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `logpulsed` executable under test: the one cargo built for this test
/// run (this package owns the binary), or the path in `LOGPULSED` (e.g. a
/// release build).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGPULSED") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_logpulsed"))
}

/// Reports a test that cannot run here: prints `SKIPPED: <why>`, or, under
/// `CI=true` (where everything a test needs is installed and it runs as
/// root), fails: a skip in CI would be a promise left unchecked.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true: a test may not skip, but this one would: {why}");
    }
    println!("SKIPPED: {why}");
}

/// Python from `LP_PYTHON` (the venv scripts/test makes) if it can import
/// `module`, or why not.
pub fn python_with(module: &str) -> Result<String, String> {
    let py = std::env::var("LP_PYTHON").unwrap_or_else(|_| "python3".to_string());
    match Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .output()
    {
        Ok(o) if o.status.success() => Ok(py),
        Ok(o) => Err(format!(
            "{module} not importable by {py} (scripts/test installs it): {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Err(format!("cannot run {py}: {e}")),
    }
}

/// Runs a test script, prints its output, and asserts that it succeeded
/// and printed `expect`; returns its stdout.
pub fn run_script(cmd: &mut Command, expect: &str) -> String {
    let out = cmd
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run the script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains(expect), "{stdout}");
    stdout
}

/// A random token-like string.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local_addr")
        .port()
}

/// Percent-encodes a query-string component.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k=v&k=v` with both sides percent-encoded.
pub fn qs(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An HTTP response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the contract's error shape: the status, `Content-Type:
    /// application/json` and a non-empty `"error"` string. Returns the message.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body {:?}",
            self.text()
        );
        self.assert_json_error()
    }

    /// Asserts a JSON error body of any 4xx/5xx status.
    pub fn assert_json_error(&self) -> String {
        assert!(
            self.status >= 400,
            "expected an error status, got {} with {:?}",
            self.status,
            self.text()
        );
        assert!(
            self.content_type().starts_with("application/json"),
            "error {} has Content-Type {:?}; body {:?}",
            self.status,
            self.content_type(),
            self.text()
        );
        let v = self.json();
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("error body without an \"error\" string: {v}"));
        assert!(!msg.is_empty(), "empty error message: {v}");
        msg.to_string()
    }

    /// Asserts a 2xx status and returns the JSON body.
    pub fn ok_json(&self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.text()
        );
        self.json()
    }
}

/// How to start a daemon.
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// `LOGPULSE_ADMIN_TOKEN`; `None` starts without one (the daemon then
    /// generates `<data-dir>/admin-token`).
    pub admin_token: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The admin token when it is configured some other way (config file,
    /// flag) than `LOGPULSE_ADMIN_TOKEN`.
    pub known_token: Option<String>,
    /// A data dir of the caller's (e.g. on a small filesystem) instead of one
    /// inside the daemon's temporary directory.
    pub data_dir: Option<PathBuf>,
    /// The ClickHouse backend to run on (see [`clickhouse`]); by default
    /// set when `LP_TEST_BACKEND=clickhouse`.
    pub clickhouse: Option<ClickHouseTarget>,
}

/// Where a daemon on the ClickHouse backend keeps its rows.
#[derive(Clone, Debug)]
pub struct ClickHouseTarget {
    pub urls: String,
    pub cluster: String,
    pub database: String,
    /// Drops the database when the daemon is dropped.
    pub owner: bool,
}

impl ClickHouseTarget {
    /// A fresh database on the shared two-node test cluster (started if
    /// it is not running).
    pub fn fresh() -> ClickHouseTarget {
        clickhouse::ensure_nodes(&[1, 2]);
        ClickHouseTarget {
            urls: clickhouse::URLS.into(),
            cluster: clickhouse::CLUSTER.into(),
            database: clickhouse::fresh_database(),
            owner: true,
        }
    }

    /// The same database, for a second node that does not drop it.
    pub fn shared(&self) -> ClickHouseTarget {
        ClickHouseTarget {
            owner: false,
            ..self.clone()
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            args: Vec::new(),
            admin_token: Some(format!("admin-{}", random_token())),
            env: Vec::new(),
            known_token: None,
            data_dir: None,
            clickhouse: clickhouse::enabled().then(ClickHouseTarget::fresh),
        }
    }
}

impl Options {
    pub fn arg(mut self, a: impl Into<String>) -> Options {
        self.args.push(a.into());
        self
    }

    pub fn args(mut self, args: impl IntoIterator<Item = String>) -> Options {
        self.args.extend(args);
        self
    }

    pub fn no_admin_token(mut self) -> Options {
        self.admin_token = None;
        self
    }

    /// No `LOGPULSE_ADMIN_TOKEN`; the admin token is `token`, configured by
    /// the caller through a flag or config file.
    pub fn admin_token_configured_elsewhere(mut self, token: &str) -> Options {
        self.admin_token = None;
        self.known_token = Some(token.to_string());
        self
    }

    /// Runs on the embedded engine whatever `LP_TEST_BACKEND` says.
    pub fn embedded(mut self) -> Options {
        self.clickhouse = None;
        self
    }

    /// Runs on the ClickHouse backend at `target`.
    pub fn clickhouse(mut self, target: ClickHouseTarget) -> Options {
        self.clickhouse = Some(target);
        self
    }

    /// Uses `dir` as the data dir.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Options {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn start(self) -> Daemon {
        Daemon::start_with(self)
    }
}

/// The free-space floor the harness gives daemons whose test sets none.
pub const TEST_MIN_FREE_DISK_BYTES: &str = "16777216";

/// A running `logpulsed` child process with its own data dir.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub base: String,
    /// The admin token (read from `<data-dir>/admin-token` when generated).
    pub token: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    opts: Options,
    agent: ureq::Agent,
    _root: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon with default options and a random admin token.
    pub fn start() -> Daemon {
        Options::default().start()
    }

    pub fn options() -> Options {
        Options::default()
    }

    pub fn start_with(opts: Options) -> Daemon {
        Daemon::try_start_with(opts).unwrap_or_else(|e| panic!("logpulsed did not start: {e}"))
    }

    /// Starts a daemon; one that exits instead of becoming healthy (e.g.
    /// refusing a damaged data dir) is an `Err` with its exit status and log.
    pub fn try_start_with(opts: Options) -> Result<Daemon, String> {
        let root = tempfile::Builder::new()
            .prefix("logpulse-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| root.path().join("data"));
        let log_path = root.path().join("logpulsed.log");
        let mut d = Daemon {
            child: None,
            addr: "127.0.0.1:1".parse().unwrap(),
            base: String::new(),
            token: opts
                .admin_token
                .clone()
                .or(opts.known_token.clone())
                .unwrap_or_default(),
            data_dir,
            log_path,
            opts,
            agent: ureq::agent(),
            _root: root,
        };
        d.try_spawn()?;
        Ok(d)
    }

    /// Spawns the child on a fresh port and waits until it is healthy.
    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("logpulsed did not start: {e}");
        }
    }

    /// Like [`Self::start_again`], but a daemon that exits instead of
    /// becoming healthy (e.g. refusing a damaged data dir) is an `Err` with
    /// its exit status and the log it wrote during this attempt.
    pub fn try_start_again(&mut self) -> Result<(), String> {
        self.try_spawn()
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "daemon already running");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            self.addr = SocketAddr::from(([127, 0, 0, 1], port));
            self.base = format!("http://{}", self.addr);
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .expect("open daemon log");
            let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
            let mut cmd = Command::new(binary());
            cmd.arg("--listen")
                .arg(self.addr.to_string())
                .arg("--data-dir")
                .arg(&self.data_dir)
                .args(&self.opts.args);
            if let Some(ch) = &self.opts.clickhouse {
                cmd.args(clickhouse::args(&ch.urls, &ch.cluster, &ch.database));
            }
            // The daemon's 1 GiB free-space floor is for hosts; test machines
            // (CI's among them) can have less free than that. Tests of the
            // floor itself set their own.
            if !self.opts.args.iter().any(|a| a == "--min-free-disk-bytes") {
                cmd.arg("--min-free-disk-bytes")
                    .arg(TEST_MIN_FREE_DISK_BYTES);
            }
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log);
            for (k, _) in std::env::vars() {
                if k.starts_with("LOGPULSE_") {
                    cmd.env_remove(&k);
                }
            }
            cmd.env("LOGPULSE_LOG", "info");
            if let Some(t) = &self.opts.admin_token {
                cmd.env("LOGPULSE_ADMIN_TOKEN", t);
            }
            for (k, v) in &self.opts.env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn logpulsed");
            self.child = Some(child);
            self.agent = ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build();
            match self.wait_ready() {
                Ok(()) => {
                    if self.opts.admin_token.is_none() && self.opts.known_token.is_none() {
                        self.token = std::fs::read_to_string(self.data_dir.join("admin-token"))
                            .expect("generated admin-token file")
                            .trim()
                            .to_string();
                    }
                    return Ok(());
                }
                Err(e) => {
                    let tail = self.log_since(log_len);
                    if let Some(mut c) = self.child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    last_err = format!("{e}\n--- daemon log ---\n{tail}");
                    if tail.contains("binding") || tail.contains("in use") {
                        continue; // lost a race for the port: try another
                    }
                    break;
                }
            }
        }
        Err(last_err)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("logpulsed exited early with {st}"));
            }
            let r = self
                .agent
                .get(&self.url("/v0/health"))
                .timeout(Duration::from_secs(2))
                .call();
            if let Ok(r) = r {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if t0.elapsed() > READY_TIMEOUT {
                return Err("no healthy answer within the timeout".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s.get(offset as usize..).unwrap_or(&s).to_string()
    }

    /// Everything the daemon(s) of this test wrote to stdout/stderr.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("daemon running").id() as i32
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().unwrap().is_none(),
        }
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let t0 = Instant::now();
        let child = self.child.as_mut().expect("daemon running");
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if t0.elapsed() > timeout {
                let _ = child.kill();
                let st = child.wait();
                self.child = None;
                panic!(
                    "logpulsed did not exit within {timeout:?} ({st:?})\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits and asserts exit code 0.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let st = self.wait_exit(EXIT_TIMEOUT);
        assert_eq!(
            st.code(),
            Some(0),
            "logpulsed exited with {st} after SIGTERM\n--- log ---\n{}",
            self.log()
        );
    }

    /// `kill -9`: no chance to sync anything.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let st = self.wait_exit(EXIT_TIMEOUT);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL),
            "the daemon died of something else than the SIGKILL sent: {st}"
        );
    }

    /// Starts the daemon again on the same data dir (after `stop`/`kill9`).
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Clean stop (asserting exit code 0) and start on the same data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `kill -9` and start on the same data dir.
    /// Stops the daemon (SIGTERM), changes its options, starts it again on
    /// the same data dir.
    pub fn restart_with(&mut self, change: impl FnOnce(&mut Options)) {
        self.stop();
        change(&mut self.opts);
        self.start_again();
    }

    pub fn crash_restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// One HTTP request. `token` goes in `Authorization: Bearer`. 4xx and 5xx
    /// are returned like any other response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = self.agent.request(method, &self.url(path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match res {
            Ok(r) => to_resp(r),
            Err(ureq::Error::Status(_, r)) => to_resp(r),
            Err(e) => panic!("{method} {path}: transport error: {e}"),
        }
    }

    /// Like [`request`] but a transport error (connection refused or reset)
    /// is returned instead of panicking.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Resp, String> {
        let mut req = self.agent.request(method, &self.url(path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match res {
            Ok(r) => Ok(to_resp(r)),
            Err(ureq::Error::Status(_, r)) => Ok(to_resp(r)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The HTTP agent of the running daemon (for requests the helpers do not cover).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// POST as admin with a body of unknown length (chunked transfer encoding).
    pub fn post_chunked(&self, path: &str, body: &[u8]) -> Resp {
        let req = self
            .agent
            .post(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token));
        match req.send(std::io::Cursor::new(body.to_vec())) {
            Ok(r) => to_resp(r),
            Err(ureq::Error::Status(_, r)) => to_resp(r),
            Err(e) => panic!("POST {path}: transport error: {e}"),
        }
    }

    /// GET as admin.
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, Some(&self.token), &[], None)
    }

    /// GET with the given token (or none).
    pub fn get_as(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, &[], None)
    }

    /// POST as admin.
    pub fn post(&self, path: &str, body: &[u8]) -> Resp {
        self.request("POST", path, Some(&self.token), &[], Some(body))
    }

    /// POST with the given token (or none).
    pub fn post_as(&self, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
        self.request("POST", path, token, &[], Some(body))
    }

    /// POSTs NDJSON `rows` to the Events API as admin; asserts 200 (wait) or
    /// 202 and returns (successful_rows, quarantined_rows).
    pub fn ingest(&self, ds: &str, rows: &[Value], wait: bool) -> (u64, u64) {
        let body = ndjson(rows);
        let path = if wait {
            format!("/v0/events?name={ds}&wait=true")
        } else {
            format!("/v0/events?name={ds}")
        };
        let r = self.post(&path, body.as_bytes());
        assert_eq!(
            r.status,
            if wait { 200 } else { 202 },
            "ingest into {ds}: {}",
            r.text()
        );
        counts(&r.json())
    }

    /// GET a pipe as admin with the given parameters (`file` is e.g.
    /// `recent_logs.json`).
    pub fn pipe(&self, file: &str, params: &[(&str, &str)]) -> Resp {
        self.get(&format!("/v0/pipes/{file}?{}", qs(params)))
    }

    /// A pipe's JSON answer, asserting 200.
    pub fn pipe_json(&self, pipe: &str, params: &[(&str, &str)]) -> Value {
        let r = self.pipe(&format!("{pipe}.json"), params);
        assert_eq!(r.status, 200, "{pipe} {params:?}: {}", r.text());
        assert!(r.content_type().starts_with("application/json"));
        r.json()
    }

    /// `statistics.row_count` of a data source.
    pub fn row_count(&self, ds: &str) -> u64 {
        let r = self.get(&format!("/v0/datasources/{ds}"));
        let v = r.ok_json();
        v["statistics"]["row_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no statistics.row_count in {v}"))
    }

    /// Creates a scoped token as admin and returns its value.
    pub fn create_token(&self, name: &str, scopes: &[&str]) -> String {
        let mut q = vec![("name", name)];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        let r = self.post(&format!("/v0/tokens?{}", qs(&q)), b"");
        let v = r.ok_json();
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {v}"))
            .to_string()
    }

    /// Sends raw bytes on a new connection and parses the answer (the request
    /// should carry `Connection: close`).
    pub fn raw(&self, request: &[u8]) -> Resp {
        raw_http(self.addr, request)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(ch) = self.opts.clickhouse.as_ref().filter(|c| c.owner) {
            clickhouse::on_every_node(
                &ch.urls,
                &format!("DROP DATABASE IF EXISTS `{}`", ch.database),
            );
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail = &log[log.len().saturating_sub(6000)..];
            let tail = tail.char_indices().next().map_or("", |(i, _)| &tail[i..]);
            eprintln!("--- logpulsed log (tail) ---\n{tail}\n--- end of log ---");
        }
    }
}

fn to_resp(r: ureq::Response) -> Resp {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            r.all(&n)
                .into_iter()
                .map(|v| (n.to_ascii_lowercase(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    r.into_reader()
        .take(512 << 20)
        .read_to_end(&mut body)
        .expect("read response body");
    Resp {
        status,
        headers,
        body,
    }
}

/// One raw HTTP/1.1 exchange over a fresh TCP connection.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading all of a huge request.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(r) = parse_complete(&buf) {
                    return r;
                }
            }
            Err(e) => {
                if let Some(r) = parse_complete(&buf) {
                    return r;
                }
                panic!(
                    "reading raw response: {e}; got {:?}",
                    String::from_utf8_lossy(&buf)
                );
            }
        }
    }
    parse_complete(&buf)
        .unwrap_or_else(|| panic!("incomplete response {:?}", String::from_utf8_lossy(&buf)))
}

/// Parses a complete response (by Content-Length or chunked encoding).
pub fn parse_complete(buf: &[u8]) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().ok()?;
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        let mut p = rest;
        loop {
            let nl = p.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&p[..nl]).ok()?.trim(), 16).ok()?;
            p = &p[nl + 2..];
            if size == 0 {
                break;
            }
            if p.len() < size + 2 {
                return None;
            }
            body.extend_from_slice(&p[..size]);
            p = &p[size + 2..];
        }
        body
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Rows as NDJSON text.
pub fn ndjson(rows: &[Value]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&r.to_string());
        s.push('\n');
    }
    s
}

/// (successful_rows, quarantined_rows) of an Events API answer, asserting
/// the body has exactly those two integer members.
pub fn counts(v: &Value) -> (u64, u64) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["quarantined_rows", "successful_rows"],
        "Events API body {v}"
    );
    (
        v["successful_rows"]
            .as_u64()
            .expect("integer successful_rows"),
        v["quarantined_rows"]
            .as_u64()
            .expect("integer quarantined_rows"),
    )
}

/// A valid `system_logs` row.
pub fn log_row(ts: &str, service: &str, severity: &str, message: &str) -> Value {
    serde_json::json!({
        "timestamp": ts,
        "server_id": "srv-1",
        "service": service,
        "severity": severity,
        "message": message,
    })
}

/// The `message` of every row of a recent_logs answer, in order.
pub fn messages(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array in {v}"))
        .iter()
        .map(|r| r["message"].as_str().expect("message").to_string())
        .collect()
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn fmt_ts(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The current Unix time in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// 2023-06-01 14:30:00 UTC, the seed's timestamp.
pub const SEED_TS: i64 = 1_685_629_800;

/// Path of a file under the repository's `tests/` directory.
pub fn tests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
}

// ----- Helpers of the reliability suite (crash loop, damage, disk full,
// hostile input, soak). -----

/// A `system_logs` row whose every field is derived from `id`, so that a row
/// read back can be checked field by field ([`check_tagged`]). `id` must not
/// contain `|`. An id containing [`HIGH_CARDINALITY`] gets a service with one
/// of 500 instance suffixes (`auth-00042`): nearly a service per row.
pub fn tagged_row(id: &str, ts: i64) -> Value {
    let h = fnv(id);
    let services = ["auth", "db", "api", "cache"];
    let service = if id.contains(HIGH_CARDINALITY) {
        format!("{}-{:05}", services[(h % 4) as usize], (h >> 20) % 500)
    } else {
        services[(h % 4) as usize].to_string()
    };
    let severities = ["ERROR", "WARN", "INFO", "DEBUG"];
    let pad = "x".repeat((h % 200) as usize);
    serde_json::json!({
        "timestamp": fmt_ts(ts),
        "server_id": format!("srv-{}", h % 7),
        "service": service,
        "severity": severities[((h >> 8) % 4) as usize],
        "message": id,
        "error_code": format!("E{:04}", h % 10_000),
        "resource_id": format!("res|{id}|{}", h % 1000),
        "metadata": format!("{{\"id\":\"{id}\",\"pad\":\"{pad}\"}}"),
    })
}

/// Marks a [`tagged_row`] id whose service carries an instance suffix.
pub const HIGH_CARDINALITY: &str = "-hc";

/// Asserts that a row as `recent_logs` returns it is exactly
/// `tagged_row(message, timestamp)` (every column intact) and returns its
/// (id, timestamp, service, severity).
pub fn check_tagged(row: &Value) -> (String, i64, String, String) {
    let id = row["message"]
        .as_str()
        .unwrap_or_else(|| panic!("row without a message: {row}"))
        .to_string();
    let ts_text = row["timestamp"].as_str().expect("timestamp").to_string();
    let ts = parse_ts(&ts_text).unwrap_or_else(|| panic!("bad timestamp in {row}"));
    let want = tagged_row(&id, ts);
    for col in [
        "timestamp",
        "server_id",
        "service",
        "severity",
        "message",
        "error_code",
        "resource_id",
        "metadata",
    ] {
        assert_eq!(
            row[col], want[col],
            "garbled column {col} of row {id}: {row}"
        );
    }
    (
        id,
        ts,
        want["service"].as_str().unwrap().to_string(),
        want["severity"].as_str().unwrap().to_string(),
    )
}

/// FNV-1a of a string (stable across runs and platforms).
pub fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into Unix seconds.
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// A field of `/proc/<pid>/status` in kB (e.g. `RssAnon`).
pub fn proc_status_kb(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A seed for the random choices of a test: `LP_SEED` if set (to replay a
/// failure), else a fresh one. The test prints it.
pub fn seed() -> u64 {
    std::env::var("LP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

/// An env knob of the long runs: `name` parsed, or `default`.
pub fn env_knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
