//! A generated log of long inpatient stays, the MOT cycle's hardest case:
//! 100 to 160 encounters a stay over about 600 touchpoints, times to the
//! day (most events share their day with the one before), and each
//! patient's lab panel and medicines repeated day after day. Deterministic:
//! the same stays for the same count, on any machine.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use crate::config::LongStayLogArgs;
use verdad::demo::visits::Rng;

/// The first day stays may start: 2025-01-01, 00:00 UTC.
const FIRST_DAY: i64 = 1_735_689_600;
const DAY: i64 = 86_400;

/// Touchpoints by kind: (prefix, how many, place in the designed cycle).
pub(super) const KINDS: &[(&str, usize, i32)] = &[
    ("admission", 8, 10),
    ("ward", 40, 20),
    ("lab", 320, 30),
    ("medicine", 160, 40),
    ("procedure", 60, 50),
    ("discharge", 12, 90),
];

/// One event: its stay, its touchpoint (an index of [`activities`]) and
/// its time in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    pub(super) stay: u32,
    pub(super) activity: u16,
    pub(super) time: i64,
}

/// Every touchpoint's code with its place in the designed cycle, the
/// indices [`Event::activity`] points into.
pub(super) fn activities() -> Vec<(String, i32)> {
    KINDS
        .iter()
        .flat_map(|(prefix, n, place)| (1..=*n).map(move |i| (format!("{prefix}-{i:03}"), *place)))
        .collect()
}

/// The first index of the touchpoints of `kind`.
fn offset(kind: usize) -> usize {
    KINDS[..kind].iter().map(|k| k.1).sum()
}

/// The demo's SplitMix64, drawn from as the stays need: seedable and the
/// same everywhere.
struct Random(Rng);

impl Random {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// One of `kind`'s touchpoints, the first ones far more often (a few
    /// lab tests and wards carry most of a hospital's stays).
    fn skewed(&mut self, kind: usize) -> u16 {
        let u = self.unit().powi(6);
        (offset(kind) + (u * KINDS[kind].1 as f64) as usize) as u16
    }

    /// Distinct touchpoints of `kind`, in the order the hospital's systems
    /// record them (by code).
    fn orders(&mut self, kind: usize, at_least: usize, more: usize) -> Vec<u16> {
        let n = at_least + self.below(more);
        let mut chosen: Vec<u16> = (0..n).map(|_| self.skewed(kind)).collect();
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    }
}

/// The events of stay `stay` (from 0), in order.
pub(super) fn stay(stay: u32) -> Vec<Event> {
    let mut random = Random(Rng::from_state(
        u64::from(stay).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed,
    ));
    let length = 100 + random.below(61);
    let mut day = FIRST_DAY + random.below(365) as i64 * DAY;
    let panel = random.orders(2, 6, 9);
    let medicines = random.orders(3, 3, 6);
    let mut events = Vec::with_capacity(length);
    let mut push = |activity: u16, time: i64| {
        events.push(Event {
            stay,
            activity,
            time,
        })
    };
    push(random.skewed(0), day);
    push(random.skewed(1), day);
    let mut count = 2;
    while count < length - 1 {
        // Each day, nearly all of the standing lab orders and medicines,
        // at the day's one time; now and then a procedure or a move to
        // another ward.
        let mut today = Vec::new();
        if random.unit() < 0.04 {
            today.push(random.skewed(1));
        }
        today.extend(panel.iter().filter(|_| random.unit() < 0.97));
        today.extend(medicines.iter().filter(|_| random.unit() < 0.97));
        if random.unit() < 0.08 {
            today.push(random.skewed(4));
        }
        for activity in today.into_iter().take(length - 1 - count) {
            push(activity, day);
            count += 1;
        }
        day += DAY;
    }
    push(random.skewed(5), day);
    events
}

/// `stays` stays, one after another.
pub(super) fn stays(stays: u32) -> impl Iterator<Item = Event> {
    (0..stays).flat_map(stay)
}

/// The journey id of stay `n`.
pub(super) fn journey_id(stay: u32) -> String {
    format!("stay-{stay:05}")
}

pub(super) fn write_csv(args: &LongStayLogArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::create(&args.path)
        .with_context(|| format!("cannot create {}", args.path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let names = activities();
    writeln!(out, "event_seq,case_id,activity,timestamp")?;
    for (seq, event) in stays(args.stays).enumerate() {
        let time = chrono::DateTime::from_timestamp(event.time, 0)
            .context("a generated time out of range")?;
        writeln!(
            out,
            "{seq},{},{},{}",
            journey_id(event.stay),
            names[usize::from(event.activity)].0,
            time.format("%Y-%m-%dT%H:%M:%SZ")
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_are_long_tied_to_the_day_and_the_same_every_time() {
        assert_eq!(activities().len(), 600);
        let events: Vec<Event> = stays(200).collect();
        let mut per_stay = std::collections::HashMap::<u32, usize>::new();
        for event in &events {
            *per_stay.entry(event.stay).or_default() += 1;
        }
        assert!(per_stay.values().all(|n| (100..=160).contains(n)));
        let tied = events
            .windows(2)
            .filter(|w| w[0].stay == w[1].stay && w[0].time == w[1].time);
        assert!(
            tied.count() * 10 > events.len() * 7,
            "most events share the day before"
        );
        let again: Vec<(u32, u16, i64)> =
            stays(200).map(|e| (e.stay, e.activity, e.time)).collect();
        assert_eq!(
            again,
            events
                .iter()
                .map(|e| (e.stay, e.activity, e.time))
                .collect::<Vec<_>>()
        );
    }
}
