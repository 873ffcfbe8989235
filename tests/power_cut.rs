//! The durability promises tested against what a power cut would leave, not
//! against the page cache (which survives `kill -9`): the daemon records at
//! every sync point what is durable (`LOGPULSE_TEST_FAULTS`, see
//! tests/common/power_cut.rs), the test kills it at a random moment,
//! rebuilds the data dir from that record alone and restarts on it.
//!
//! - every row acknowledged with `wait=true` survives;
//! - without `wait`, a power cut loses at most `sync_interval_ms`;
//! - after a clean stop (SIGTERM) every acknowledged row is durable.
//!
//! Each of the first two is also run with one sync removed from the daemon
//! (`LOGPULSE_TEST_MUTATION`) and must then find lost rows: that is what
//! shows the check would catch the bug. `LP_MUTATION=<name>` runs the
//! normal tests with a sync removed (they then fail, as they should).
//! `LP_POWER_CUTS=<n>` repeats the power cuts n times (default 2): for
//! `wait=true` as a crash loop on one data dir (each restart on the image the
//! previous cut left, every earlier round's rows checked again).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::power_cut::{compact_files, post_rows, sigkill, Faults};
use common::*;
use rand::{Rng, SeedableRng};

/// Every message in `system_logs`.
fn stored_messages(d: &Daemon) -> HashSet<String> {
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("limit", "10000"),
            ("start_time", "2000-01-01 00:00:00"),
            ("end_time", "2100-01-01 00:00:00"),
        ],
    );
    let total = v["rows_before_limit_at_least"].as_u64().unwrap();
    assert!(total <= 10_000, "too many rows for one page: {total}");
    messages(&v).into_iter().collect()
}

fn mutation_env() -> Option<String> {
    std::env::var("LP_MUTATION").ok().filter(|m| !m.is_empty())
}

/// What one power cut left: acknowledged rows lost, and how many there were.
struct Outcome {
    acked: usize,
    lost: Vec<String>,
}

/// A daemon with the switches on and the background sync an hour away.
fn wait_true_daemon(faults: &Faults, mutation: Option<&str>, extra: &[&str]) -> Daemon {
    let opts = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("3600000")
        .args(extra.iter().map(|a| a.to_string()));
    faults.options(opts, mutation).start()
}

/// The hours of round `round`: a range of its own, so that each round's rows
/// fit one recent_logs page.
fn round_hours(round: i64) -> (i64, i64) {
    static NOW_HOUR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let now_hour = *NOW_HOUR.get_or_init(|| now_secs() / 3600 * 3600);
    let top = now_hour - 3600 - round * 400 * 3600;
    (top - 300 * 3600, top + 3600)
}

/// Messages stored in the hours of `round`.
fn stored_in_round(d: &Daemon, round: i64) -> HashSet<String> {
    let (from, to) = round_hours(round);
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("limit", "10000"),
            ("start_time", &fmt_ts(from)),
            ("end_time", &fmt_ts(to)),
        ],
    );
    let total = v["rows_before_limit_at_least"].as_u64().unwrap();
    assert!(total <= 10_000, "too many rows for one page: {total}");
    messages(&v).into_iter().collect()
}

/// One round of the crash loop: clients append `wait=true` batches, each
/// into an hour of its own (so each makes a new segment file); the power is
/// cut at a random moment; the daemon restarts on what was durable. Returns
/// the rows of this round that were acknowledged.
fn wait_true_round(
    faults: &Faults,
    d: &mut Daemon,
    round: i64,
    rng: &mut rand::rngs::StdRng,
) -> Vec<String> {
    let (_, top) = round_hours(round);
    let acked = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let cut_after = Duration::from_millis(rng.gen_range(400..1200));
    std::thread::scope(|s| {
        for c in 0..3 {
            let (base_url, token, acked, stop) = (&d.base, &d.token, &acked, &stop);
            s.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let hour = top - 3600 - ((i * 3 + c) % 300) * 3600;
                    let ids: Vec<String> =
                        (0..5).map(|j| format!("w{round}-{c}-{i}-{j}")).collect();
                    let r = post_rows(base_url, token, true, &ids, hour + 60);
                    match r {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().extend(ids),
                        Ok(r) => panic!("append answered {}: {}", r.status, r.text()),
                        Err(_) => break, // the power cut
                    }
                }
            });
        }
        std::thread::sleep(cut_after);
        sigkill(d.pid());
        stop.store(true, Ordering::Relaxed);
    });
    faults.power_cut(d);
    d.start_again();
    acked.into_inner().unwrap()
}

/// Rounds of [`wait_true_round`] on one data dir; after each, every row
/// acknowledged in any round so far must be there.
fn wait_true_power_cuts(
    mutation: Option<&str>,
    rounds: i64,
    rng: &mut rand::rngs::StdRng,
) -> Outcome {
    wait_true_power_cuts_with(mutation, rounds, rng, &[], Duration::ZERO).0
}

/// [`wait_true_power_cuts`] with extra daemon flags and a pause after each
/// restart (to let background work get going before the next cut). Also
/// returns the data dir's compact segment files at the end.
fn wait_true_power_cuts_with(
    mutation: Option<&str>,
    rounds: i64,
    rng: &mut rand::rngs::StdRng,
    extra: &[&str],
    pause: Duration,
) -> (Outcome, usize) {
    let faults = Faults::new();
    let mut d = wait_true_daemon(&faults, mutation, extra);
    let mut acked: Vec<Vec<String>> = Vec::new();
    let mut out = Outcome {
        acked: 0,
        lost: Vec::new(),
    };
    for round in 0..rounds {
        std::thread::sleep(pause);
        acked.push(wait_true_round(&faults, &mut d, round, rng));
        out.acked = 0;
        for (r, ids) in acked.iter().enumerate() {
            let stored = stored_in_round(&d, r as i64);
            out.acked += ids.len();
            out.lost
                .extend(ids.iter().filter(|id| !stored.contains(*id)).cloned());
        }
        if !out.lost.is_empty() {
            break;
        }
    }
    (out, compact_files(&d.data_dir.join("system_logs")))
}

const SYNC_INTERVAL_MS: u64 = 200;

/// Clients append without `wait`; the power is cut at a random moment; rows
/// acknowledged longer than `sync_interval_ms` before the cut (plus the time
/// one sync takes on a loaded machine) must survive.
fn unwaited_power_cut(mutation: Option<&str>, rng: &mut rand::rngs::StdRng) -> Outcome {
    let faults = Faults::new();
    let opts = Daemon::options()
        .arg("--sync-interval-ms")
        .arg(SYNC_INTERVAL_MS.to_string());
    let mut d = faults.options(opts, mutation).start();
    let ts = now_secs() - 120;
    let acked: Mutex<Vec<(Instant, String)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let cut_after = Duration::from_millis(rng.gen_range(1200..2000));
    let t_cut = std::thread::scope(|s| {
        for c in 0..2 {
            let (base_url, token, acked, stop) = (&d.base, &d.token, &acked, &stop);
            s.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let ids: Vec<String> = (0..5).map(|j| format!("u{c}-{i}-{j}")).collect();
                    let r = post_rows(base_url, token, false, &ids, ts);
                    match r {
                        Ok(r) if r.status == 202 => {
                            let now = Instant::now();
                            acked
                                .lock()
                                .unwrap()
                                .extend(ids.into_iter().map(|id| (now, id)))
                        }
                        Ok(r) => panic!("append answered {}: {}", r.status, r.text()),
                        Err(_) => break,
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        std::thread::sleep(cut_after);
        let t_cut = Instant::now();
        sigkill(d.pid());
        stop.store(true, Ordering::Relaxed);
        t_cut
    });
    faults.power_cut(&mut d);
    d.start_again();
    let stored = stored_messages(&d);
    // One interval, plus slack for a sync that started late or took long.
    let promised = Duration::from_millis(SYNC_INTERVAL_MS + 300);
    let old: Vec<String> = acked
        .into_inner()
        .unwrap()
        .into_iter()
        .filter(|(t, _)| t_cut.duration_since(*t) > promised)
        .map(|(_, id)| id)
        .collect();
    let lost = old
        .iter()
        .filter(|id| !stored.contains(*id))
        .cloned()
        .collect();
    Outcome {
        acked: old.len(),
        lost,
    }
}

fn rng() -> rand::rngs::StdRng {
    let seed = seed();
    println!("seed {seed} (LP_SEED to replay)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn assert_none_lost(what: &str, o: &Outcome) {
    println!("{what}: {} rows checked, {} lost", o.acked, o.lost.len());
    assert!(
        o.acked >= 50,
        "{what}: only {} acknowledged rows to check",
        o.acked
    );
    assert!(
        o.lost.is_empty(),
        "{what}: {} of {} acknowledged rows lost by a power cut, e.g. {:?}",
        o.lost.len(),
        o.acked,
        &o.lost[..o.lost.len().min(5)]
    );
}

#[test]
fn a_power_cut_keeps_every_row_acknowledged_with_wait_true() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let mut rng = rng();
    let m = mutation_env();
    let o = wait_true_power_cuts(m.as_deref(), env_knob("LP_POWER_CUTS", 2), &mut rng);
    assert_none_lost("wait=true", &o);
}

/// The crash loop with background compaction on: the clients' rows land in
/// hundreds of past hours that the lifecycle thread keeps compacting (and,
/// as late rows arrive, compacting again), so cuts fall in the middle of
/// builds and swaps; what was durable must hold every acknowledged row.
#[test]
fn a_power_cut_during_background_compaction_keeps_every_acknowledged_row() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let mut rng = rng();
    let (o, compact) = wait_true_power_cuts_with(
        None,
        env_knob("LP_POWER_CUTS", 3),
        &mut rng,
        &["--compaction-delay-secs", "1", "--min-free-disk-bytes", "0"],
        Duration::from_millis(1500),
    );
    assert_none_lost("wait=true with background compaction", &o);
    assert!(
        compact > 0,
        "background compaction never ran during the crash loop"
    );
}

#[test]
fn a_power_cut_loses_at_most_sync_interval_of_unwaited_rows() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let mut rng = rng();
    let m = mutation_env();
    for _ in 0..env_knob("LP_POWER_CUTS", 2) {
        let o = unwaited_power_cut(m.as_deref(), &mut rng);
        assert_none_lost("without wait", &o);
    }
}

#[test]
fn after_sigterm_the_durable_image_holds_every_acknowledged_row() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let faults = Faults::new();
    let opts = Daemon::options().arg("--sync-interval-ms").arg("3600000");
    let mut d = faults.options(opts, mutation_env().as_deref()).start();
    let base = now_secs() - 7200;
    let mut ids = Vec::new();
    for i in 0..40 {
        let batch: Vec<String> = (0..10).map(|j| format!("t{i}-{j}")).collect();
        let rows: Vec<_> = batch
            .iter()
            .map(|id| tagged_row(id, base + i * 200))
            .collect();
        assert_eq!(d.ingest("system_logs", &rows, false), (10, 0));
        ids.extend(batch);
    }
    d.stop(); // exit code 0
    faults
        .rebuild(&d.data_dir)
        .expect("rebuild from the durable image");
    d.start_again();
    let stored = stored_messages(&d);
    let lost: Vec<_> = ids.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} rows not durable after SIGTERM",
        lost.len(),
        ids.len()
    );
    assert_eq!(d.row_count("system_logs"), ids.len() as u64);
}

/// The mutations: each removes one sync from the daemon; the same check must
/// then find lost rows (else it could not catch the bug either).
#[test]
fn each_removed_sync_makes_the_power_cut_check_fail() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let mut rng = rng();
    for (mutation, unwaited) in [
        ("skip-wait-sync", false),
        ("skip-new-file-dir-sync", false),
        ("skip-background-sync", true),
    ] {
        let o = if unwaited {
            unwaited_power_cut(Some(mutation), &mut rng)
        } else {
            wait_true_power_cuts(Some(mutation), 1, &mut rng)
        };
        println!(
            "{mutation}: {} rows checked, {} lost",
            o.acked,
            o.lost.len()
        );
        assert!(o.acked >= 50, "{mutation}: only {} rows checked", o.acked);
        assert!(
            !o.lost.is_empty(),
            "with {mutation} the power-cut check found no lost row: it cannot catch that bug"
        );
    }
}
