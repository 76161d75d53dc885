//! Hospital visits along the demo hospital's MOT cycle: the demo's history
//! and the benches' workload.
//!
//! Every journey is a pure function of its index (and of the current day), so
//! the streams generate their encounters lazily, a batch at a time, and a run
//! sends the same encounters as the run before it on the same day.

use std::{collections::HashMap, ops::RangeInclusive, time::Duration};

use prost_types::Timestamp;

use crate::proto::verdad::v1 as pb;

/// The `source` of every bench encounter.
const SOURCE: &str = "bench";

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The demo hospital opens at 08:00 in Seoul (UTC+9), i.e. 23:00 UTC the day
/// before: visits start within nine hours of it.
const OPENING_AFTER_UTC_MIDNIGHT: i64 = 8 * HOUR - 9 * HOUR;

/// The benches' visits happened between these many days before today. Five
/// days at least leaves room for the visit itself and a happy call up to
/// three days later, so that no encounter lies in the future.
const DAYS_AGO: RangeInclusive<i64> = 5..=300;

/// Purposes of the random streams of one journey: the route and the day are
/// drawn apart from the details so that planning can count encounters and
/// order journeys cheaply.
const ROUTE: u64 = 1;
const DETAILS: u64 = 2;
const DAY_OF_VISIT: u64 = 3;
/// The random stream of the unary calls' arrival times.
const ARRIVALS: u64 = 4;

const DEPARTMENTS: [&str; 8] = [
    "internal-medicine",
    "cardiology",
    "orthopaedics",
    "paediatrics",
    "dermatology",
    "neurology",
    "ophthalmology",
    "ent",
];

const COMPLAINTS: [&str; 5] = [
    "Nobody told me how long I would have to wait.",
    "The person at the desk did not look up from the screen.",
    "I could not find the way and nobody helped me.",
    "I was sent back and forth between two desks.",
    "The explanation was rushed and hard to follow.",
];

const PRAISE: [&str; 3] = [
    "Very kind and patient staff.",
    "Everything was explained clearly.",
    "Quick and friendly, thank you.",
];

/// SplitMix64: small, fast and good enough for a workload, with no crate.
/// `verdad-bench`'s generated long stays draw from it too.
pub struct Rng(u64);

impl Rng {
    /// The stream that starts from `state`.
    pub fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// The random stream `purpose` of journey `journey`.
    fn new(journey: u64, purpose: u64) -> Self {
        let mut seeder = Rng(journey ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng(seeder.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be 0.
    fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough and free of a division.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `range` (not empty).
    fn within(&mut self, range: RangeInclusive<i64>) -> i64 {
        let (low, high) = (*range.start(), *range.end());
        low + self.below((high - low + 1) as u64) as i64
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1_000) < per_mille
    }

    /// One of `items` (not empty).
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The demo hospital's touchpoints (see `crate::demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touchpoint {
    PhoneBooking,
    Website,
    EntranceGuard,
    Lobby,
    ReceptionDesk,
    WaitingArea,
    ConsultationRoom,
    Examination,
    Payment,
    Pharmacy,
    HappyCall,
}

impl Touchpoint {
    fn code(self) -> &'static str {
        match self {
            Touchpoint::PhoneBooking => "phone-booking",
            Touchpoint::Website => "website",
            Touchpoint::EntranceGuard => "entrance-guard",
            Touchpoint::Lobby => "lobby",
            Touchpoint::ReceptionDesk => "reception-desk",
            Touchpoint::WaitingArea => "waiting-area",
            Touchpoint::ConsultationRoom => "consultation-room",
            Touchpoint::Examination => "examination",
            Touchpoint::Payment => "payment",
            Touchpoint::Pharmacy => "pharmacy",
            Touchpoint::HappyCall => "happy-call",
        }
    }

    /// The observed standard in force at this touchpoint that the bench
    /// reports on, if any. The server rejects an observation of a standard
    /// not in force at the encounter's touchpoint.
    fn observed_standard(self) -> Option<&'static str> {
        match self {
            Touchpoint::Lobby => Some("lobby-signage"),
            Touchpoint::ConsultationRoom => Some("consultation-explained"),
            Touchpoint::Pharmacy => Some("medication-explained"),
            _ => None,
        }
    }
}

/// The touchpoints journey `journey` passes, in order: 5 to 10 of them.
fn route(journey: u64) -> Vec<Touchpoint> {
    use Touchpoint::*;
    let mut rng = Rng::new(journey, ROUTE);
    let mut route = Vec::with_capacity(10);
    // Most visits are booked, by phone or online; the rest walk in.
    match rng.below(100) {
        0..=64 => route.push(PhoneBooking),
        65..=84 => route.push(Website),
        _ => {}
    }
    let walk_in = route.is_empty();
    // A walk-in is always met by the guard, which keeps every route at five
    // encounters or more.
    if walk_in || rng.chance(900) {
        route.push(EntranceGuard);
    }
    if rng.chance(600) {
        route.push(Lobby);
    }
    route.extend([ReceptionDesk, WaitingArea, ConsultationRoom]);
    if rng.chance(350) {
        route.push(Examination);
    }
    route.push(Payment);
    if rng.chance(700) {
        route.push(Pharmacy);
    }
    if rng.chance(300) {
        route.push(HappyCall);
    }
    route
}

/// One stream's share of the workload: consecutive journeys, cut after
/// `encounters` encounters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub first_journey: u64,
    pub journeys: u64,
    pub encounters: u64,
}

impl Share {
    /// The share's encounters, generated as they are taken, journey by
    /// journey in the order of their visit days, as a feed sends them (and
    /// as an export of history would): each batch then falls on a day or
    /// two, not on the whole year.
    pub fn encounters(self, today: i64) -> impl Iterator<Item = pb::Encounter> {
        let count = usize::try_from(self.encounters).unwrap_or(usize::MAX);
        let mut journeys: Vec<u64> =
            (self.first_journey..self.first_journey + self.journeys).collect();
        journeys.sort_by_key(|&index| (std::cmp::Reverse(visit_days_ago(index, DAYS_AGO)), index));
        journeys
            .into_iter()
            .flat_map(move |index| journey(index, today))
            .take(count)
    }
}

/// Splits `total` encounters into at most `streams` shares of whole journeys
/// and nearly equal size; only the very last journey may be cut short. Empty
/// shares (more streams than journeys) are left out.
pub fn plan(total: u64, streams: u32) -> Vec<Share> {
    let streams = u64::from(streams.max(1));
    let mut shares = Vec::new();
    let (mut next_journey, mut planned) = (0u64, 0u64);
    for k in 1..=streams {
        // Cumulative targets, so rounding never adds up to more than total.
        let target = (u128::from(total) * u128::from(k) / u128::from(streams)) as u64;
        let (first_journey, start) = (next_journey, planned);
        while planned < target {
            planned += route(next_journey).len() as u64;
            next_journey += 1;
        }
        let encounters = planned.min(total).saturating_sub(start);
        if encounters > 0 {
            shares.push(Share {
                first_journey,
                journeys: next_journey - first_journey,
                encounters,
            });
        }
    }
    shares
}

/// The measured and observed facts of one contact.
#[derive(Debug, Default)]
struct Contact {
    wait_seconds: Option<i64>,
    first_response_seconds: Option<i64>,
    duration_seconds: Option<i64>,
    satisfaction: Option<i32>,
    effort: Option<i32>,
    /// The touchpoint's observed standard, reported as met or not.
    observation: Option<bool>,
    /// Whether a member of staff served the customer.
    staffed: bool,
    /// Whether the contact belongs to the visit's department.
    departmental: bool,
}

/// What the hospital's systems know of one contact at `touchpoint`. The
/// distributions sit mostly within the demo standards, with a tail beyond
/// them, so that a few percent of encounters fail and open recovery cases.
fn contact(touchpoint: Touchpoint, rng: &mut Rng) -> Contact {
    match touchpoint {
        Touchpoint::PhoneBooking => Contact {
            first_response_seconds: Some(skewed(rng, 930, 2..=20, 21..=90)),
            duration_seconds: Some(rng.within(60..=420)),
            satisfaction: asked(rng, 250),
            staffed: true,
            ..Contact::default()
        },
        Touchpoint::Website => Contact {
            duration_seconds: Some(skewed(rng, 920, 60..=300, 301..=900)),
            satisfaction: asked(rng, 100),
            effort: rng.chance(300).then(|| rng.within(1..=7) as i32),
            ..Contact::default()
        },
        Touchpoint::EntranceGuard => Contact {
            first_response_seconds: Some(skewed(rng, 940, 2..=15, 16..=45)),
            staffed: true,
            ..Contact::default()
        },
        Touchpoint::Lobby => Contact {
            observation: observed(rng, 500, 920),
            ..Contact::default()
        },
        Touchpoint::ReceptionDesk => Contact {
            first_response_seconds: Some(skewed(rng, 940, 2..=15, 16..=60)),
            duration_seconds: Some(rng.within(60..=300)),
            satisfaction: asked(rng, 200),
            staffed: true,
            ..Contact::default()
        },
        Touchpoint::WaitingArea => Contact {
            wait_seconds: Some(skewed(rng, 930, 60..=1_800, 1_801..=3_600)),
            satisfaction: asked(rng, 200),
            ..Contact::default()
        },
        Touchpoint::ConsultationRoom => Contact {
            duration_seconds: Some(rng.within(300..=1_500)),
            satisfaction: asked(rng, 400),
            observation: observed(rng, 400, 880),
            staffed: true,
            departmental: true,
            ..Contact::default()
        },
        Touchpoint::Examination => Contact {
            wait_seconds: Some(rng.within(120..=1_800)),
            duration_seconds: Some(rng.within(300..=2_400)),
            staffed: true,
            departmental: true,
            ..Contact::default()
        },
        Touchpoint::Payment => Contact {
            wait_seconds: Some(skewed(rng, 950, 30..=600, 601..=1_500)),
            duration_seconds: Some(rng.within(30..=180)),
            staffed: true,
            ..Contact::default()
        },
        Touchpoint::Pharmacy => Contact {
            wait_seconds: Some(rng.within(60..=1_200)),
            duration_seconds: Some(rng.within(60..=300)),
            observation: observed(rng, 400, 900),
            staffed: true,
            ..Contact::default()
        },
        Touchpoint::HappyCall => Contact {
            // For the happy call, wait_seconds is the time from the end of
            // the visit to the call (see the demo standard happy-call-48h).
            wait_seconds: Some(skewed(
                rng,
                900,
                12 * HOUR..=48 * HOUR,
                48 * HOUR + 1..=72 * HOUR,
            )),
            duration_seconds: Some(rng.within(120..=600)),
            satisfaction: asked(rng, 800),
            effort: rng.chance(600).then(|| rng.within(1..=7) as i32),
            staffed: true,
            ..Contact::default()
        },
    }
}

/// A value in `usual` `per_mille` times in a thousand, else in `rare`.
fn skewed(
    rng: &mut Rng,
    per_mille: u64,
    usual: RangeInclusive<i64>,
    rare: RangeInclusive<i64>,
) -> i64 {
    if rng.chance(per_mille) {
        rng.within(usual)
    } else {
        rng.within(rare)
    }
}

/// The satisfaction of a customer asked `per_mille` times in a thousand:
/// mostly 4 or 5, sometimes 1 to 3.
fn asked(rng: &mut Rng, per_mille: u64) -> Option<i32> {
    rng.chance(per_mille).then(|| match rng.below(100) {
        0..=47 => 5,
        48..=83 => 4,
        84..=92 => 3,
        93..=96 => 2,
        _ => 1,
    })
}

/// Whether the observed standard was met, when it was observed at all.
fn observed(rng: &mut Rng, per_mille_observed: u64, per_mille_met: u64) -> Option<bool> {
    rng.chance(per_mille_observed)
        .then(|| rng.chance(per_mille_met))
}

fn situation(rng: &mut Rng) -> pb::Situation {
    match rng.below(1_000) {
        0..=14 => pb::Situation::Recovery,
        15..=34 => pb::Situation::Adaptability,
        35..=44 => pb::Situation::Spontaneity,
        45..=49 => pb::Situation::Coping,
        _ => pb::Situation::Unspecified,
    }
}

/// Unhappy customers often say why; happy ones now and then.
fn comment(satisfaction: Option<i32>, rng: &mut Rng) -> String {
    match satisfaction {
        Some(1..=2) if rng.chance(700) => rng.pick(&COMPLAINTS).to_owned(),
        Some(5) if rng.chance(50) => rng.pick(&PRAISE).to_owned(),
        _ => String::new(),
    }
}

/// What all encounters of one visit share.
struct Visit {
    index: u64,
    journey_id: String,
    customer_ref: String,
    department: &'static str,
}

/// How many days before today journey `index`'s visit was.
fn visit_days_ago(index: u64, days_ago: RangeInclusive<i64>) -> i64 {
    Rng::new(index, DAY_OF_VISIT).within(days_ago)
}

/// The encounters of journey `index`, in the order they happened. `today` is
/// the first second (UTC, Unix time) of the current day.
pub fn journey(index: u64, today: i64) -> Vec<pb::Encounter> {
    journey_within(index, today, DAYS_AGO)
}

/// As [`journey`], the visit `days_ago` days before today (at least five).
pub fn journey_within(index: u64, today: i64, days_ago: RangeInclusive<i64>) -> Vec<pb::Encounter> {
    let route = route(index);
    let mut rng = Rng::new(index, DETAILS);
    let visit = Visit {
        index,
        journey_id: format!("visit-{index}"),
        // About one visit in ten is sent with a (pseudonymous) patient
        // reference; patients come back, so references repeat.
        customer_ref: if rng.chance(100) {
            format!("patient-{}", rng.below(50_000))
        } else {
            String::new()
        },
        department: rng.pick(&DEPARTMENTS),
    };
    let day = today - visit_days_ago(index, days_ago) * DAY;
    let arrival = day + OPENING_AFTER_UTC_MIDNIGHT + rng.within(0..=9 * HOUR);
    let mut clock = arrival;
    let mut encounters = Vec::with_capacity(route.len());
    for (step, touchpoint) in route.into_iter().enumerate() {
        let contact = contact(touchpoint, &mut rng);
        let at = match touchpoint {
            // Booked one to fourteen days before the visit.
            Touchpoint::PhoneBooking | Touchpoint::Website => arrival - rng.within(DAY..=14 * DAY),
            // Called wait_seconds after the visit ended.
            Touchpoint::HappyCall => clock + contact.wait_seconds.unwrap_or(DAY),
            // On site: the next contact follows this one's wait and duration
            // and a short walk.
            _ => {
                let at = clock;
                clock += contact.wait_seconds.unwrap_or(0)
                    + contact.duration_seconds.unwrap_or(0)
                    + rng.within(MINUTE..=8 * MINUTE);
                at
            }
        };
        encounters.push(encounter(&visit, step, touchpoint, at, contact, &mut rng));
    }
    encounters
}

fn encounter(
    visit: &Visit,
    step: usize,
    touchpoint: Touchpoint,
    at: i64,
    contact: Contact,
    rng: &mut Rng,
) -> pb::Encounter {
    // Microseconds, as Verdad keeps them.
    let nanos = rng.below(1_000_000) as i32 * 1_000;
    let situation = situation(rng);
    let staff_ref = if contact.staffed {
        format!("staff-{}", rng.within(1..=240))
    } else {
        String::new()
    };
    let comment = comment(contact.satisfaction, rng);
    let observations = match (contact.observation, touchpoint.observed_standard()) {
        (Some(met), Some(code)) => vec![pb::Observation {
            standard_code: code.to_owned(),
            met,
            note: if met {
                String::new()
            } else {
                "Reported to the supervisor.".to_owned()
            },
        }],
        _ => Vec::new(),
    };
    let mut attributes = HashMap::new();
    if contact.departmental {
        attributes.insert("department".to_owned(), visit.department.to_owned());
    }
    pb::Encounter {
        touchpoint_code: touchpoint.code().to_owned(),
        journey_id: visit.journey_id.clone(),
        customer_ref: visit.customer_ref.clone(),
        occur_time: Some(Timestamp { seconds: at, nanos }),
        wait_seconds: contact.wait_seconds,
        first_response_seconds: contact.first_response_seconds,
        duration_seconds: contact.duration_seconds,
        satisfaction: contact.satisfaction,
        effort: contact.effort,
        situation: situation as i32,
        staff_ref,
        comment,
        observations,
        attributes,
        source: SOURCE.to_owned(),
        external_id: format!("{}-{step}", visit.index),
        ..pb::Encounter::default()
    }
}

/// When each of `count` calls at `rate` a second is due, from the start:
/// the gaps between calls drawn at random (exponentially, so that calls
/// from independent systems sometimes come close together), the same on
/// every run.
pub fn poisson_schedule(count: usize, rate: u64) -> Vec<Duration> {
    let mut rng = Rng::new(0, ARRIVALS);
    let mean_gap = 1.0 / rate.max(1) as f64;
    let mut due = 0.0;
    (0..count)
        .map(|_| {
            // 1 - u is in (0, 1], so its logarithm is finite.
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            due += -(1.0 - u).ln() * mean_gap;
            Duration::from_secs_f64(due)
        })
        .collect()
}

/// When each of `count` calls at `rate` a second is due, from the start,
/// sent in groups every `tick`.
pub fn tick_schedule(count: usize, rate: u64, tick: Duration) -> Vec<Duration> {
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
    (0..count)
        .map(|i| tick.mul_f64((i as f64 / per_tick).floor()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// 2026-01-01T00:00:00Z.
    const TODAY: i64 = 1_767_225_600;

    #[test]
    fn a_plan_covers_exactly_the_total_in_disjoint_journeys() {
        for (total, streams) in [(1, 1), (7, 2), (10, 64), (1_000, 3), (12_345, 4)] {
            let shares = plan(total, streams);
            assert_eq!(shares.iter().map(|s| s.encounters).sum::<u64>(), total);
            assert!(shares.len() <= streams as usize);
            for pair in shares.windows(2) {
                assert_eq!(
                    pair[0].first_journey + pair[0].journeys,
                    pair[1].first_journey
                );
            }
            let generated: usize = shares.iter().map(|s| s.encounters(TODAY).count()).sum();
            assert_eq!(generated as u64, total);
        }
    }

    #[test]
    fn poisson_arrivals_keep_the_rate_on_average_and_vary_their_gaps() {
        let due = poisson_schedule(20_000, 1_000);
        assert_eq!(due, poisson_schedule(20_000, 1_000));
        assert!(due.windows(2).all(|pair| pair[0] <= pair[1]));
        let seconds = due[due.len() - 1].as_secs_f64();
        assert!(
            (19.4..20.6).contains(&seconds),
            "{seconds} s for 20,000 calls"
        );
        // Exponential gaps: about e^-2 of them over twice the mean, and
        // about 1 - e^-0.1 under a tenth of it.
        let gaps: Vec<f64> = due
            .windows(2)
            .map(|p| (p[1] - p[0]).as_secs_f64())
            .collect();
        let share = |f: &dyn Fn(f64) -> bool| {
            gaps.iter().filter(|g| f(**g)).count() as f64 / gaps.len() as f64
        };
        let long = share(&|g| g > 0.002);
        let short = share(&|g| g < 0.0001);
        assert!((0.12..0.15).contains(&long), "{long} over 2 ms");
        assert!((0.08..0.11).contains(&short), "{short} under 0.1 ms");
    }

    #[test]
    fn ticks_send_what_the_rate_owes_every_tick() {
        let tick = Duration::from_millis(10);
        let due = tick_schedule(25, 1_000, tick);
        assert_eq!(due[0], Duration::ZERO);
        assert_eq!(due[9], Duration::ZERO);
        assert_eq!(due[10], tick);
        assert_eq!(due[24], tick * 2);
        // Below one call a tick, one call every tick.
        assert_eq!(tick_schedule(3, 10, tick), [Duration::ZERO, tick, tick * 2]);
    }

    #[test]
    fn journeys_are_deterministic() {
        assert_eq!(journey(42, TODAY), journey(42, TODAY));
        assert_ne!(journey(42, TODAY), journey(43, TODAY));
    }

    #[test]
    fn journeys_are_valid_and_realistic() {
        let now = TODAY + 60;
        let mut external_ids = HashSet::new();
        for index in 0..5_000 {
            let encounters = journey(index, TODAY);
            assert!((5..=10).contains(&encounters.len()), "journey {index}");
            let mut last = i64::MIN;
            for encounter in &encounters {
                let at = encounter
                    .occur_time
                    .as_ref()
                    .map(|t| t.seconds)
                    .unwrap_or_default();
                assert!(at > last, "journey {index} goes back in time");
                assert!(at < now && at > TODAY - 320 * DAY);
                last = at;
                assert!(external_ids.insert(encounter.external_id.clone()));
                assert_eq!(encounter.source, SOURCE);
                assert_eq!(encounter.journey_id, format!("visit-{index}"));
                for seconds in [
                    encounter.wait_seconds,
                    encounter.first_response_seconds,
                    encounter.duration_seconds,
                ]
                .into_iter()
                .flatten()
                {
                    assert!((0..=604_800).contains(&seconds));
                }
                if let Some(satisfaction) = encounter.satisfaction {
                    assert!((1..=5).contains(&satisfaction));
                }
                if let Some(effort) = encounter.effort {
                    assert!((1..=7).contains(&effort));
                }
                for observation in &encounter.observations {
                    let expected = [
                        Touchpoint::Lobby,
                        Touchpoint::ConsultationRoom,
                        Touchpoint::Pharmacy,
                    ]
                    .into_iter()
                    .find(|t| t.code() == encounter.touchpoint_code)
                    .and_then(Touchpoint::observed_standard);
                    assert_eq!(Some(observation.standard_code.as_str()), expected);
                }
            }
        }
    }
}
