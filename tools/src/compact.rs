//! `logpulse-compact`: retention and compaction of closed hours of a
//! stopped data dir, a dry run of both, and a read-only check of every file.
//! The work itself is the engine's (`logpulse_engine::compaction`).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use logpulse_engine::compaction::{
    survey_data_dir, verify_data_dir, CompactOptions, Dropped, SegmentInfo, Verified,
};
use logpulse_engine::lock::DirLock;
use logpulse_engine::{DataSource, Engine, EngineConfig};

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Unix seconds taken as "now" (closed hours, retention).
    pub now: u32,
    pub retention_days: Option<u32>,
    pub threads: usize,
    pub options: CompactOptions,
}

impl Plan {
    /// Hours before this one are closed (the current UTC hour is not).
    pub fn open_hour(&self) -> u32 {
        self.now / 3600
    }

    /// Hours before this one are dropped by retention.
    pub fn retention_hour(&self) -> Option<u32> {
        self.retention_days
            .map(|d| (self.now as u64).saturating_sub(d as u64 * 86_400) as u32 / 3600)
    }
}

/// Segment count and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub segments: u64,
    pub rows: u64,
    pub bytes: u64,
}

impl Tally {
    fn of<'a>(segs: impl IntoIterator<Item = &'a SegmentInfo>) -> Tally {
        segs.into_iter().fold(Tally::default(), |t, s| Tally {
            segments: t.segments + 1,
            rows: t.rows + s.rows,
            bytes: t.bytes + s.bytes,
        })
    }
}

/// What a run did (or, in a dry run, would do).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    pub before: Tally,
    pub after: Tally,
    /// Bytes of all files of the data dir (index included) on disk.
    pub disk_before: u64,
    pub disk_after: u64,
    pub dropped: Tally,
    /// Hours compacted, and the segments and bytes they had and have.
    pub hours: u64,
    pub compacted_in: Tally,
    pub compacted_out: Tally,
    pub build_time: Duration,
    pub elapsed: Duration,
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run {
            "would drop"
        } else {
            "dropped"
        };
        writeln!(
            f,
            "retention: {would} {} segments, {} rows, {:.1} MB",
            self.dropped.segments,
            self.dropped.rows,
            mb(self.dropped.bytes)
        )?;
        let would = if self.dry_run {
            "would compact"
        } else {
            "compacted"
        };
        write!(
            f,
            "compaction: {would} {} hours: {} segments, {:.1} MB",
            self.hours,
            self.compacted_in.segments,
            mb(self.compacted_in.bytes)
        )?;
        if !self.dry_run {
            write!(
                f,
                " -> {} segments, {:.1} MB",
                self.compacted_out.segments,
                mb(self.compacted_out.bytes)
            )?;
            if self.compacted_out.rows > 0 {
                write!(
                    f,
                    " ({} rows, {:.1} -> {:.1} bytes/row)",
                    self.compacted_out.rows,
                    self.compacted_in.bytes as f64 / self.compacted_in.rows.max(1) as f64,
                    self.compacted_out.bytes as f64 / self.compacted_out.rows as f64
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "segments: {} ({} rows, {:.1} MB) -> {} ({} rows, {:.1} MB)",
            self.before.segments,
            self.before.rows,
            mb(self.before.bytes),
            self.after.segments,
            self.after.rows,
            mb(self.after.bytes)
        )?;
        writeln!(
            f,
            "data dir on disk: {:.1} MB -> {:.1} MB",
            mb(self.disk_before),
            mb(self.disk_after)
        )?;
        let secs = self.elapsed.as_secs_f64();
        write!(f, "took {secs:.2} s")?;
        if !self.dry_run && self.compacted_in.bytes > 0 {
            write!(
                f,
                " (compaction {:.1} MB/s of segment data)",
                mb(self.compacted_in.bytes) / self.build_time.as_secs_f64().max(1e-9)
            )?;
        }
        Ok(())
    }
}

/// Bytes the files under `dir` take on disk (allocated blocks).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// The (data source, hour) groups compaction would merge: closed hours that
/// are not a single compact segment already, and survive retention.
fn hours_to_compact(segs: &[SegmentInfo], plan: &Plan) -> Vec<(DataSource, u32, Vec<SegmentInfo>)> {
    let mut by_hour: BTreeMap<(DataSource, u32), Vec<SegmentInfo>> = BTreeMap::new();
    for s in segs {
        by_hour
            .entry((s.ds, s.id.hour))
            .or_default()
            .push(s.clone());
    }
    by_hour
        .into_iter()
        .filter(|((_, h), _)| *h < plan.open_hour())
        .filter(|(_, v)| !(v.len() == 1 && v[0].compact))
        .map(|((ds, h), v)| (ds, h, v))
        .collect()
}

fn data_dir_must_exist(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(anyhow!("data dir {} does not exist", dir.display()));
    }
    Ok(())
}

/// Retention, then compaction of every closed hour, on a stopped data dir.
pub fn run(dir: &Path, plan: &Plan, verbose: bool) -> Result<Report> {
    data_dir_must_exist(dir)?;
    let t0 = Instant::now();
    let disk_before = disk_usage(dir);
    let engine = Engine::open(EngineConfig::new(dir))
        .with_context(|| format!("cannot open data dir {}", dir.display()))?;
    let mut report = Report {
        disk_before,
        before: Tally::of(&engine.segment_infos()),
        ..Default::default()
    };
    let res = run_open(&engine, plan, verbose, &mut report);
    let closed = engine.close().context("final sync of the data dir failed");
    res?;
    closed?;
    drop(engine);
    report.disk_after = disk_usage(dir);
    report.elapsed = t0.elapsed();
    Ok(report)
}

fn run_open(engine: &Engine, plan: &Plan, verbose: bool, report: &mut Report) -> Result<()> {
    if let Some(before_hour) = plan.retention_hour() {
        let d: Dropped = engine.drop_hours_before(before_hour)?;
        report.dropped = Tally {
            segments: d.segments.len() as u64,
            rows: d.rows(),
            bytes: d.bytes(),
        };
    }
    let todo = hours_to_compact(&engine.segment_infos(), plan);
    report.hours = todo.len() as u64;
    let queue = Mutex::new(todo.into_iter().collect::<VecDeque<_>>());
    let done = Mutex::new((Tally::default(), Tally::default()));
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let t_build = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..plan.threads.max(1) {
            s.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let Some((ds, hour, _)) = queue.lock().expect("lock").pop_front() else {
                    return;
                };
                match engine.compact_hour(ds, hour, &plan.options) {
                    Ok(Some(c)) => {
                        if verbose {
                            eprintln!(
                                "compacted {} {}: {} segments, {} bytes -> {} bytes",
                                ds.name(),
                                c.output.path.display(),
                                c.inputs.len(),
                                c.inputs.iter().map(|i| i.bytes).sum::<u64>(),
                                c.output.bytes
                            );
                        }
                        let mut d = done.lock().expect("lock");
                        let t_in = Tally::of(&c.inputs);
                        let t_out = Tally::of([&c.output]);
                        d.0 = add(d.0, t_in);
                        d.1 = add(d.1, t_out);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let e = anyhow!(e)
                            .context(format!("compaction of hour {hour} of {} failed", ds.name()));
                        failure.lock().expect("lock").get_or_insert(e);
                    }
                }
            });
        }
    });
    report.build_time = t_build.elapsed();
    (report.compacted_in, report.compacted_out) = done.into_inner().expect("lock");
    report.after = Tally::of(&engine.segment_infos());
    match failure.into_inner().expect("lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn add(a: Tally, b: Tally) -> Tally {
    Tally {
        segments: a.segments + b.segments,
        rows: a.rows + b.rows,
        bytes: a.bytes + b.bytes,
    }
}

/// What [`run`] would do, without changing anything (the lock is taken so
/// that the files do not change while they are read).
pub fn dry_run(dir: &Path, plan: &Plan) -> Result<Report> {
    data_dir_must_exist(dir)?;
    let t0 = Instant::now();
    let _lock = DirLock::acquire(dir)?;
    let segs = survey_data_dir(dir)?;
    let mut report = Report {
        dry_run: true,
        before: Tally::of(&segs),
        disk_before: disk_usage(dir),
        ..Default::default()
    };
    let (dropped, kept): (Vec<_>, Vec<_>) = match plan.retention_hour() {
        Some(h) => segs.into_iter().partition(|s| {
            // Thresholds hours holding rows in force are kept; a dry run
            // does not decode them and counts thresholds hours as kept.
            s.id.hour < h && s.ds != DataSource::Thresholds
        }),
        None => (Vec::new(), segs),
    };
    report.dropped = Tally::of(&dropped);
    let todo = hours_to_compact(&kept, plan);
    report.hours = todo.len() as u64;
    report.compacted_in = Tally::of(todo.iter().flat_map(|(_, _, v)| v));
    report.after = report.before;
    report.disk_after = report.disk_before;
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// Checks every file (read-only); the lock keeps a daemon out meanwhile.
pub fn verify(dir: &Path) -> Result<Verified> {
    data_dir_must_exist(dir)?;
    let _lock = DirLock::acquire(dir)?;
    Ok(verify_data_dir(dir)?)
}
