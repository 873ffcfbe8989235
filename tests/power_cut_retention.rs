//! The power-cut crash loop of tests/power_cut.rs while retention and
//! background compaction run (`--retention-days 1`, `--compaction-delay-secs
//! 1`): a cut can fall in the middle of a drop or of a compaction swap, and
//! the restart sees only what was durable.
//!
//! What the engine promises (docs/format.md, "Retention"): retention unlinks
//! whole segment files and fsyncs their directories; an interrupted drop
//! leaves some of those files, whole, and the next run removes them. So:
//!
//! - every `wait=true` row of a retained hour survives, exactly once;
//! - an expired hour (here: one acknowledged batch, one file) is either all
//!   there (its drop was not durable yet) or all gone, never in part, and
//!   once seen gone it never comes back;
//! - drops really happened before cuts (some acknowledged expired hour is
//!   gone from a cut's durable image), and compaction ran.
//!
//! The durable image is checked by a second daemon, without retention, on a
//! copy of it (the restarted daemon drops what survived at once). `LP_POWER_CUTS`
//! sets the number of rounds (default 3); `LP_SEED` replays one.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::power_cut::{compact_files, copy_tree, post_rows, sigkill, Faults};
use common::*;
use rand::{Rng, SeedableRng};

/// Start of the current hour, fixed for the whole test.
fn hour0() -> i64 {
    static H: OnceLock<i64> = OnceLock::new();
    *H.get_or_init(|| now_secs() / 3600 * 3600)
}

/// The 20 hours the retained rows go to: 2 to 21 hours ago.
const RETAINED_HOURS: i64 = 20;

fn retained_hour(idx: i64) -> i64 {
    hour0() - (2 + idx % RETAINED_HOURS) * 3600
}

/// Expired hour `i` (< 1000) of round `round`: three days ago and older,
/// each batch an hour of its own.
fn expired_hour(round: i64, i: i64) -> i64 {
    assert!(i < 1000, "more expired batches than hours set aside");
    hour0() - 3 * 86_400 - (round * 1000 + i) * 3600
}

/// What the clients of one round had acknowledged when the power was cut.
#[derive(Default)]
struct Acked {
    retained: Vec<String>,
    /// (hour, ids of its one batch)
    expired: Vec<(i64, Vec<String>)>,
}

/// One round: client 0 appends one batch into each of a run of expired
/// hours (which retention keeps dropping), clients 1 and 2 append into the
/// retained hours, eight batches per hour before moving on (so hours go
/// quiet and get compacted, then receive rows again); the power is cut at a
/// random moment after at least one retention tick.
fn round(d: &Daemon, round: i64, rng: &mut rand::rngs::StdRng) -> Acked {
    let acked = Mutex::new(Acked::default());
    let stop = AtomicBool::new(false);
    let cut_after = Duration::from_millis(rng.gen_range(1200..2000));
    std::thread::scope(|s| {
        for c in 0..3i64 {
            let (base, token, acked, stop) = (&d.base, &d.token, &acked, &stop);
            s.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let ids: Vec<String> =
                        (0..5).map(|j| format!("p{round}-{c}-{i}-{j}")).collect();
                    let hour = match c {
                        0 => expired_hour(round, i),
                        _ => retained_hour((i / 8) * 2 + c - 1),
                    };
                    match post_rows(base, token, true, &ids, hour + 60 + i % 600) {
                        Ok(r) if r.status == 200 => {
                            let mut a = acked.lock().unwrap();
                            match c {
                                0 => a.expired.push((hour, ids)),
                                _ => a.retained.extend(ids),
                            }
                        }
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
    acked.into_inner().unwrap()
}

/// How many times each message is stored between `from` and `to`, added to
/// `out`.
fn count_stored(d: &Daemon, from: i64, to: i64, out: &mut HashMap<String, usize>) {
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("limit", "10000"),
            ("start_time", &fmt_ts(from)),
            ("end_time", &fmt_ts(to)),
        ],
    );
    let total = v["rows_before_limit_at_least"].as_u64().unwrap();
    assert!(total < 10_000, "too many rows for one page: {total}");
    for m in messages(&v) {
        *out.entry(m).or_insert(0) += 1;
    }
}

/// The stored rows of a copy of `data_dir`, read by a daemon without
/// retention: (retained hours, expired hours).
type Stored = (HashMap<String, usize>, HashMap<String, usize>);

fn read_image(data_dir: &std::path::Path, rounds: i64) -> Stored {
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("data");
    copy_tree(data_dir, &copy).expect("copy the durable image");
    let mut c = Daemon::options().data_dir(&copy).start();
    // An hour, a round at a time: each fits one page.
    let (mut retained, mut expired) = (HashMap::new(), HashMap::new());
    for h in 0..RETAINED_HOURS {
        count_stored(&c, retained_hour(h), retained_hour(h) + 3600, &mut retained);
    }
    for r in 0..rounds {
        let (from, to) = (expired_hour(r, 999), expired_hour(r, 0) + 3600);
        count_stored(&c, from, to, &mut expired);
    }
    c.stop();
    (retained, expired)
}

#[test]
fn a_power_cut_during_retention_and_compaction_keeps_every_retained_row() {
    if common::clickhouse::embedded_only("power cuts of the data dir") {
        return;
    }
    let seed = seed();
    println!("seed {seed} (LP_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let faults = Faults::new();
    let opts = Daemon::options().args(
        [
            "--sync-interval-ms",
            "3600000",
            "--retention-days",
            "1",
            "--compaction-delay-secs",
            "1",
            "--min-free-disk-bytes",
            "0",
        ]
        .map(String::from),
    );
    let mut d = faults.options(opts, None).start();
    let (mut retained, mut expired) = (Vec::new(), Vec::new());
    let mut gone: HashSet<i64> = HashSet::new();
    let mut dropped_before_a_cut = 0;
    for r in 0..env_knob("LP_POWER_CUTS", 3) {
        // Time for the restart's retention and compaction to get going.
        std::thread::sleep(Duration::from_millis(1500));
        let a = round(&d, r, &mut rng);
        let fresh: HashSet<i64> = a.expired.iter().map(|e| e.0).collect();
        retained.extend(a.retained);
        expired.extend(a.expired);
        faults.power_cut(&mut d);
        let (kept, old) = read_image(&d.data_dir, r + 1);
        let lost: Vec<_> = retained
            .iter()
            .filter(|id| !kept.contains_key(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "round {r}: {} of {} acknowledged retained rows lost, e.g. {:?}",
            lost.len(),
            retained.len(),
            &lost[..lost.len().min(5)]
        );
        let twice: Vec<_> = kept.iter().chain(&old).filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "round {r}: rows stored twice: {twice:?}");
        for (hour, ids) in &expired {
            let present = ids.iter().filter(|id| old.contains_key(*id)).count();
            let label = fmt_ts(*hour);
            assert!(
                present == 0 || present == ids.len(),
                "round {r}: expired hour {label} is partly there ({present} of {})",
                ids.len()
            );
            assert!(
                present == 0 || !gone.contains(hour),
                "round {r}: expired hour {label} came back after its drop was durable"
            );
            if present == 0 && gone.insert(*hour) && fresh.contains(hour) {
                dropped_before_a_cut += 1;
            }
        }
        println!(
            "round {r}: {} retained rows checked, {} expired hours acknowledged, {} gone",
            retained.len(),
            expired.len(),
            gone.len()
        );
        d.start_again();
    }
    assert!(
        retained.len() >= 100,
        "only {} retained rows",
        retained.len()
    );
    // Drops made durable while the round's clients ran, or after a restart
    // (of hours the previous cut resurrected): either way before a cut.
    println!("{dropped_before_a_cut} expired hours dropped durably in the round that wrote them");
    assert!(
        !gone.is_empty(),
        "retention never dropped an hour durably before a power cut"
    );
    let compact = compact_files(&d.data_dir.join("system_logs"));
    assert!(compact > 0, "background compaction never ran");
}
