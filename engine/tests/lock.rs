//! One engine per data dir: a second `Engine::open` of a dir that is open,
//! in this process or another, fails with `Error::Locked` naming the holder
//! (its pid), leaves the first engine working, and the dir opens again once
//! the holder is gone (dropped, or killed).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use logpulse_engine::*;

fn locked_holder(err: Error) -> String {
    let msg = err.to_string();
    match err {
        Error::Locked { holder, .. } => {
            assert!(msg.contains(&holder), "{msg}");
            holder
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
}

#[test]
fn second_open_in_the_same_process_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path());
    first
        .append(&batch("x", 10, BASE, 1), Durability::Visible)
        .unwrap();
    let err = match Engine::open(EngineConfig::new(tmp.path())) {
        Ok(_) => panic!("second open succeeded"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    let holder = locked_holder(err);
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    // The refused open did not disturb the first engine.
    first
        .append(&batch("y", 10, BASE, 1), Durability::Synced)
        .unwrap();
    assert_eq!(scan(&first).len(), 20);
    first.close().unwrap();
    drop(first);
    let again = open(tmp.path());
    assert_eq!(scan(&again).len(), 20);
}

const CHILD_ENV: &str = "LP_LOCK_CHILD_DIR";

#[test]
fn second_open_from_another_process_is_refused_naming_its_pid() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let e = Engine::open(EngineConfig::new(dir)).unwrap();
        e.append(&batch("child", 5, BASE, 1), Durability::Synced)
            .unwrap();
        println!("ready");
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_open_from_another_process_is_refused_naming_its_pid",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child died early");
    }
    let res = Engine::open(EngineConfig::new(tmp.path()));
    let holder = match res {
        Ok(_) => {
            let _ = child.kill();
            panic!("open succeeded while another process holds the dir");
        }
        Err(e) => locked_holder(e),
    };
    assert!(holder.contains(&format!("pid {}", child.id())), "{holder}");
    // The lock dies with its holder.
    child.kill().unwrap();
    child.wait().unwrap();
    let e = open(tmp.path());
    assert_eq!(scan(&e).len(), 5);
}
