//! What the machine's processors did during a phase, from Linux's
//! `/proc/stat`: how busy they were, and how much of their time the
//! hypervisor gave to other guests (steal). Latencies measured while much
//! was stolen say more about the neighbours than about Verdad.

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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuUse {
    /// How many processors' worth of time was spent running something.
    pub(super) busy_processors: f64,
    /// The share of the time the hypervisor ran other guests instead.
    pub(super) stolen_share: f64,
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
    }
}
