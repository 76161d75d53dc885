//! What the machine's processors did during a phase, from Linux's
//! `/proc/stat`: how busy they were, and how much of their time the
//! hypervisor gave to other guests (steal). Latencies measured while much
//! was stolen say more about the neighbours than about Verdad. And from
//! `/proc/<pid>/stat`, who kept them busy: the server, PostgreSQL's
//! backends of the bench's database, and the bench itself, which on one
//! machine all take their turns on the same processors.

use std::collections::BTreeMap;

/// Processor time counters since boot, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTimes {
    busy: u64,
    idle: u64,
    steal: u64,
}

impl CpuTimes {
    /// The counters now; None where `/proc/stat` is not to be had.
    pub(super) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        parse(stat.lines().next()?)
    }

    /// What the processors did between `earlier` and `self`.
    pub(super) fn since(&self, earlier: &Self, processors: usize) -> CpuUse {
        let busy = self.busy.saturating_sub(earlier.busy);
        let idle = self.idle.saturating_sub(earlier.idle);
        let steal = self.steal.saturating_sub(earlier.steal);
        let total = (busy + idle + steal).max(1) as f64;
        CpuUse {
            busy_processors: busy as f64 / total * processors as f64,
            stolen_share: steal as f64 / total,
            ticks_per_processor: total / processors.max(1) as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuUse {
    /// How many processors' worth of time was spent running something.
    pub(super) busy_processors: f64,
    /// The share of the time the hypervisor ran other guests instead.
    pub(super) stolen_share: f64,
    /// Clock ticks that passed on each processor, to turn a process's
    /// ticks into processors' worth of time.
    ticks_per_processor: f64,
}

impl CpuUse {
    /// How many processors' worth of time `ticks` of processor time are.
    pub(super) fn processors(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_processor.max(1.0)
    }
}

/// Processor time (user and system, all threads) of the processes a phase
/// involves, in clock ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ProcessTimes {
    pub(super) server: Option<u64>,
    pub(super) bench: Option<u64>,
    /// By process id: backends come and go.
    pub(super) database: BTreeMap<u32, u64>,
}

/// Processor time spent in a phase by each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcessUse {
    pub(super) server: Option<u64>,
    pub(super) bench: Option<u64>,
    /// None when no backend could be read: PostgreSQL on another machine.
    pub(super) database: Option<u64>,
}

impl ProcessTimes {
    pub(super) fn now(server: Option<u32>, backends: &[u32]) -> Self {
        Self {
            server: server.and_then(ticks_of),
            bench: ticks_of(std::process::id()),
            database: backends
                .iter()
                .filter_map(|&pid| Some((pid, ticks_of(pid)?)))
                .collect(),
        }
    }

    /// What each part spent between `earlier` and `self`. A backend that
    /// began meanwhile counts whole; one that ended meanwhile is missed.
    pub(super) fn since(&self, earlier: &Self) -> ProcessUse {
        let spent = |now: Option<u64>, before: Option<u64>| Some(now?.saturating_sub(before?));
        let database = (!self.database.is_empty()).then(|| {
            self.database
                .iter()
                .map(|(pid, ticks)| {
                    ticks.saturating_sub(earlier.database.get(pid).copied().unwrap_or(0))
                })
                .sum()
        });
        ProcessUse {
            server: spent(self.server, earlier.server),
            bench: spent(self.bench, earlier.bench),
            database,
        }
    }
}

fn ticks_of(pid: u32) -> Option<u64> {
    parse_process(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid (comm) state ppid ... utime stime ...`: the name may hold spaces
/// and parentheses, so the fields are counted from its last `)`.
fn parse_process(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// `cpu  user nice system idle iowait irq softirq steal ...`.
fn parse(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_idle_and_stolen_ticks_are_told_apart() {
        let before = parse("cpu  100 0 50 800 10 0 5 20 0 0").unwrap();
        let after = parse("cpu  200 0 100 850 10 0 5 40 0 0").unwrap();
        let used = after.since(&before, 2);
        // 150 busy, 50 idle, 20 stolen of 220 ticks.
        assert!((used.busy_processors - 2.0 * 150.0 / 220.0).abs() < 1e-9);
        assert!((used.stolen_share - 20.0 / 220.0).abs() < 1e-9);
        assert_eq!(parse("cpu0 1 2 3"), None);
        assert_eq!(parse("cpu  1 x 3"), None);
        // 110 ticks passed on each of the two processors.
        assert!((used.processors(55) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_process_time_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (postgres: a (b) c) S 1 4242 4242 0 -1 4194560 \
                    900 0 0 0 1234 567 0 0 20 0 1 0 100 1000 10";
        assert_eq!(parse_process(stat), Some(1234 + 567));
        assert_eq!(parse_process("4242 (x) S 1 2"), None);
    }

    #[test]
    fn backends_that_began_in_the_phase_count_whole_and_parts_unread_are_unknown() {
        let before = ProcessTimes {
            server: Some(100),
            bench: None,
            database: BTreeMap::from([(1, 50), (2, 70)]),
        };
        let after = ProcessTimes {
            server: Some(160),
            bench: Some(10),
            // 2 ended, 3 began.
            database: BTreeMap::from([(1, 80), (3, 5)]),
        };
        let used = after.since(&before);
        assert_eq!(used.server, Some(60));
        assert_eq!(used.bench, None);
        assert_eq!(used.database, Some(35));
        assert_eq!(ProcessTimes::default().since(&before).database, None);
    }
}
