//! Crash injection, for the chaos suite (`cargo xtask chaos`) and nothing
//! else: the process dies at the points where a crash leaves work half done.
//!
//! `ORDERFLOW_FAULTS` names the points and how often each strikes, as
//! `point=probability` pairs: `load=0.02,commit=0.02,publish=0.05`.
//! - `load`: right after an event's records are read, before anything is
//!   decided or committed.
//! - `commit`: right after the commit, before the outbox is published.
//! - `publish`: right after a publish, before the batch answers. SQS then
//!   delivers the whole batch again.
//!
//! A strike aborts the process, as a SIGKILL or an out-of-memory kill
//! would: no destructor runs and the invocation never answers. Unset or
//! empty, nothing is injected and the wrappers below only pass calls on.
//! `ORDERFLOW_FAULTS_RECORD`, if set, names a file that gets one line per
//! strike (`point function pid`) just before it, so that the suite can
//! count them; it is a path on the host, for local clouds that run the
//! functions as host processes.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use orderflow_contracts::EventId;

use crate::error::Transient;
use crate::publish::EventPublisher;
use crate::store::{Commit, CommitError, OrderRecord, OutboxEntry, Snapshot, StateStore};

/// Where a crash can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// After the load, before the commit.
    Load,
    /// After the commit, before the publish.
    Commit,
    /// After the publish, before the batch answers.
    Publish,
}

impl Point {
    /// Every point, in the order `Faults` keeps their chances.
    pub const ALL: [Self; 3] = [Self::Load, Self::Commit, Self::Publish];

    /// The point `ORDERFLOW_FAULTS` and the strike record call `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The name `ORDERFLOW_FAULTS` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Commit => "commit",
            Self::Publish => "publish",
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which points strike, and how often.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// The chance of a strike at each point, in [`Point::ALL`]'s order.
    chances: [f64; 3],
    /// Where each strike is written down first.
    record: Option<PathBuf>,
    /// The function, for the record.
    function: &'static str,
}

impl Faults {
    /// Reads `spec` (`load=0.02,commit=0.02,publish=0.05`; empty for
    /// none). Each strike is written to `record` first, if given.
    pub fn parse(
        spec: &str,
        record: Option<PathBuf>,
        function: &'static str,
    ) -> Result<Self, String> {
        let mut chances = [0.0; 3];
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, chance) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: expected point=probability"))?;
            let point = Point::named(name.trim())
                .ok_or_else(|| format!("`{name}`: not a fault point (load, commit or publish)"))?;
            chances[point as usize] = chance
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or_else(|| format!("`{chance}`: expected a probability from 0 to 1"))?;
        }
        Ok(Self {
            chances,
            record,
            function,
        })
    }

    /// Whether any point can strike.
    pub fn any(&self) -> bool {
        self.chances.iter().any(|&c| c > 0.0)
    }

    /// The chance of a strike at `point`.
    pub fn chance(&self, point: Point) -> f64 {
        self.chances[point as usize]
    }

    /// Draws at `point`, and on a strike writes it down and aborts.
    fn at(&self, point: Point) {
        let chance = self.chance(point);
        if chance <= 0.0 {
            return;
        }
        // A fresh RandomState is freshly keyed: a uniform draw with no
        // random-number crate.
        let draw = RandomState::new().hash_one(0u8) as f64 / u64::MAX as f64;
        if draw < chance {
            self.strike(point);
        }
    }

    fn strike(&self, point: Point) -> ! {
        let line = format!("{point} {} {}\n", self.function, std::process::id());
        if let Some(path) = &self.record {
            // One short append is one write: lines from many processes do
            // not interleave.
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()));
            if let Err(err) = written {
                eprintln!("fault record {} not written: {err}", path.display());
            }
        }
        eprintln!("injected fault: crashing at `{point}` (ORDERFLOW_FAULTS)");
        std::process::abort()
    }
}

/// A store or publisher that may crash the process after its calls, as
/// [`Faults`] says.
#[derive(Debug, Clone)]
pub struct Crashing<T> {
    inner: T,
    faults: Arc<Faults>,
}

impl<T> Crashing<T> {
    /// `inner`, crashing after its calls as `faults` says.
    pub fn new(inner: T, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }
}

impl<St: StateStore> StateStore for Crashing<St> {
    async fn load(
        &self,
        event: EventId,
        order: &str,
        counters: &[String],
    ) -> Result<Snapshot, Transient> {
        let snapshot = self.inner.load(event, order, counters).await?;
        self.faults.at(Point::Load);
        Ok(snapshot)
    }

    fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<(), CommitError>> + Send {
        self.inner.write_ahead(order, expected_version, record)
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        self.inner.commit(commit).await?;
        self.faults.at(Point::Commit);
        Ok(())
    }
}

impl<P: EventPublisher> EventPublisher for Crashing<P> {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        self.inner.publish(entries).await?;
        if !entries.is_empty() {
            self.faults.at(Point::Publish);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_each_point_and_its_chance() {
        let faults = Faults::parse("load=0.5, publish=1", None, "payment").unwrap();
        assert_eq!(faults.chance(Point::Load), 0.5);
        assert_eq!(faults.chance(Point::Commit), 0.0);
        assert_eq!(faults.chance(Point::Publish), 1.0);
        assert!(faults.any());
    }

    #[test]
    fn an_empty_spec_injects_nothing() {
        let faults = Faults::parse(" ", None, "payment").unwrap();
        assert!(!faults.any());
        assert_eq!(faults, Faults::parse("", None, "payment").unwrap());
    }

    #[test]
    fn a_bad_spec_is_refused_with_what_is_wrong() {
        for (spec, says) in [
            ("load", "expected point=probability"),
            ("answer=0.1", "not a fault point"),
            ("commit=2", "from 0 to 1"),
            ("commit=often", "from 0 to 1"),
            ("commit=NaN", "from 0 to 1"),
        ] {
            let err = Faults::parse(spec, None, "payment").unwrap_err();
            assert!(err.contains(says), "{spec}: {err}");
        }
    }

    /// Set for the child process of the test below: the record's path.
    const CHILD: &str = "ORDERFLOW_TEST_STRIKE_RECORD";

    #[test]
    fn a_strike_writes_its_record_then_kills_the_process() {
        let dir = std::env::temp_dir().join(format!("orderflow-strike-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("faults.log");
        let _ = std::fs::remove_file(&record);
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["faults::tests::strike_in_a_child", "--exact", "--ignored"])
            .env(CHILD, &record)
            .output()
            .unwrap();
        assert!(!child.status.success(), "the child lived: {child:?}");
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            !stdout.contains("test result"),
            "the child's test ended: {stdout}"
        );
        let written = std::fs::read_to_string(&record).unwrap();
        let fields: Vec<&str> = written.split_whitespace().collect();
        assert_eq!(fields[..2], ["commit", "payment"], "{written}");
        assert!(
            written.ends_with('\n') && written.lines().count() == 1,
            "{written}"
        );
    }

    /// Run only by the test above, in a process of its own.
    #[test]
    #[ignore = "run as a child process by a_strike_writes_its_record_then_kills_the_process"]
    fn strike_in_a_child() {
        let Some(record) = std::env::var_os(CHILD) else {
            return;
        };
        let faults = Faults::parse("commit=1", Some(record.into()), "payment").unwrap();
        faults.at(Point::Commit);
        unreachable!("a strike at chance 1 returned");
    }

    #[test]
    fn a_point_with_no_chance_never_strikes() {
        // A strike aborts the test process, so only the chance 0 can be
        // run here; the chaos suite sees the strikes.
        let faults = Faults::parse("load=0", None, "payment").unwrap();
        for _ in 0..10_000 {
            faults.at(Point::Load);
        }
    }
}
