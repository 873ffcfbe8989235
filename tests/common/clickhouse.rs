//! The ClickHouse side of the black-box suite: with `LP_TEST_BACKEND=clickhouse`
//! every daemon the harness starts runs on the ClickHouse backend, over a
//! two-node, two-shard cluster on loopback that the first test to need it
//! starts (`tests/clickhouse/cluster.sh`; it stays up for the next test
//! binaries, `.ci/run` stops it). Each daemon gets a database of its own,
//! dropped when the test ends.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The cluster every test shares: nodes 1 and 2.
pub const CLUSTER: &str = "logpulse";
pub const URLS: &str = "http://127.0.0.1:18121,http://127.0.0.1:18122";

/// Whether this run tests the ClickHouse backend.
pub fn enabled() -> bool {
    std::env::var("LP_TEST_BACKEND").is_ok_and(|v| v == "clickhouse")
}

/// For tests about the embedded engine's own files (segments, index,
/// compaction, disk budget): true, with a note, when the run tests the
/// ClickHouse backend, where they have no meaning.
pub fn embedded_only(what: &str) -> bool {
    if enabled() {
        println!("not run on the ClickHouse backend (embedded engine only): {what}");
    }
    enabled()
}

pub fn kit() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clickhouse/cluster.sh")
}

/// Where the test cluster keeps its data and logs.
pub fn run_dir() -> String {
    std::env::var("CH_RUN").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("logpulse-test-clickhouse")
            .display()
            .to_string()
    })
}

fn http_port(node: u32) -> u16 {
    18120 + node as u16
}

pub fn ping(node: u32) -> bool {
    ureq::get(&format!("http://127.0.0.1:{}/ping", http_port(node)))
        .timeout(Duration::from_secs(1))
        .call()
        .is_ok()
}

/// Starts `nodes` unless they answer already, one test process at a time.
pub fn ensure_nodes(nodes: &[u32]) {
    let lock = OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join("logpulse-test-clickhouse.lock"))
        .expect("open the cluster lock file");
    // SAFETY: flock(2) on a descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock on the cluster lock file");
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| !ping(**n))
        .map(|n| n.to_string())
        .collect();
    if !down.is_empty() {
        start_nodes(&down);
    }
}

/// `cluster.sh start <nodes>`.
pub fn start_nodes(nodes: &[String]) {
    cluster_sh("start", nodes);
}

/// `cluster.sh stop <nodes>`.
pub fn stop_nodes(nodes: &[String]) {
    cluster_sh("stop", nodes);
    for n in nodes {
        let n: u32 = n.parse().expect("a node number");
        assert!(
            !ping(n),
            "node {n} still answers after cluster.sh stop: started outside CH_RUN={}?",
            run_dir()
        );
    }
}

fn cluster_sh(cmd: &str, nodes: &[String]) {
    let out = Command::new("bash")
        .arg(kit())
        .arg(cmd)
        .args(nodes)
        .env("CH_RUN", run_dir())
        .output()
        .expect("run tests/clickhouse/cluster.sh");
    assert!(
        out.status.success(),
        "cluster.sh {cmd} {nodes:?} failed (is clickhouse-server installed? \
         `tests/clickhouse/cluster.sh install`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database name no other test uses.
pub fn fresh_database() -> String {
    format!("lpt_{}_{}", std::process::id(), super::random_token())
}

/// The daemon flags of the ClickHouse backend over `urls` and `cluster`.
pub fn args(urls: &str, cluster: &str, database: &str) -> Vec<String> {
    [
        "--backend",
        "clickhouse",
        "--clickhouse-url",
        urls,
        "--clickhouse-cluster",
        cluster,
        "--clickhouse-database",
        database,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs a statement on every node of `urls` (best effort).
pub fn on_every_node(urls: &str, sql: &str) {
    for u in urls.split(',') {
        let _ = ureq::post(&format!("{u}/"))
            .timeout(Duration::from_secs(10))
            .send_string(sql);
    }
}

/// A query's answer from the first of `urls`, as text.
pub fn query(urls: &str, sql: &str) -> String {
    let first = urls.split(',').next().unwrap_or(urls);
    ureq::post(&format!("{first}/"))
        .timeout(Duration::from_secs(30))
        .send_string(sql)
        .unwrap_or_else(|e| panic!("ClickHouse query {sql:?}: {e}"))
        .into_string()
        .expect("answer")
}
