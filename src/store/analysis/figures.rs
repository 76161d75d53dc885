//! The figures the analyses add up, named once for their SQL.
//!
//! What makes an encounter count in a figure is a SQL function of the
//! migration `figures_defined_once` (`verdad_satisfied`, `verdad_met`,
//! `verdad_results`, ...), which the fold (`verdad_apply_rollups`) calls
//! too when it adds the encounters up per day. PostgreSQL inlines them, so
//! the plans are those of the expressions written out. The daily figures'
//! columns of the scorecard, over the encounters and over the rollups, are
//! all made from `DAY_FIGURES` below.

use sqlx::{Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    domain::standard::{Element, Severity},
    error::Result,
    store::decode,
};

/// A figure the daily rollups keep: its column in `encounter_day` (and in
/// the analyses' rows), and what the encounters `e` of a group come to in
/// it.
struct DayFigure {
    column: &'static str,
    of_encounters: &'static str,
}

/// The two figures the mean satisfaction is made of.
const RATED: DayFigure = DayFigure {
    column: "rated",
    of_encounters: "count(e.satisfaction)",
};
const SATISFACTION_SUM: DayFigure = DayFigure {
    column: "satisfaction_sum",
    of_encounters: "coalesce(sum(e.satisfaction), 0)",
};

/// The daily figures, as `encounter_day` holds them.
const DAY_FIGURES: [DayFigure; 10] = [
    DayFigure {
        column: "encounters",
        of_encounters: "count(*)",
    },
    RATED,
    SATISFACTION_SUM,
    DayFigure {
        column: "satisfied",
        of_encounters: "count(*) filter (where verdad_satisfied(e.satisfaction))",
    },
    DayFigure {
        column: "top_box",
        of_encounters: "count(*) filter (where verdad_top_box(e.satisfaction))",
    },
    DayFigure {
        column: "failed",
        of_encounters: "count(*) filter (where e.failed)",
    },
    DayFigure {
        column: "waits",
        of_encounters: "count(e.wait_seconds)",
    },
    DayFigure {
        column: "responses",
        of_encounters: "count(e.first_response_seconds)",
    },
    DayFigure {
        column: "met",
        of_encounters: "coalesce(sum(verdad_met(e.outcomes)), 0)",
    },
    DayFigure {
        column: "violated",
        of_encounters: "coalesce(sum(verdad_violated(e.outcomes)), 0)",
    },
];

/// The daily figures as columns, each `figure` of it named after its
/// column.
fn columns(figure: impl Fn(&DayFigure) -> String) -> String {
    DAY_FIGURES
        .iter()
        .map(|f| format!("{}::int8 as {}", figure(f), f.column))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mean satisfaction from two daily figures as `figure` gives them.
/// avg() divides numerics as this does: the figures match to the bit.
fn mean_satisfaction(figure: impl Fn(&DayFigure) -> String) -> String {
    format!(
        "({}::numeric / nullif({}, 0))::float8 as mean_satisfaction",
        figure(&SATISFACTION_SUM),
        figure(&RATED)
    )
}

/// The daily figures of the encounters `e` of a group, as columns.
pub(super) fn of_encounters() -> String {
    columns(|f| f.of_encounters.to_owned())
}

/// The daily figures of the encounters `e` of a group and their mean
/// satisfaction: the scorecard's counts, without its percentiles.
pub(super) fn scorecard_of_encounters() -> String {
    format!(
        "{}, {}",
        of_encounters(),
        mean_satisfaction(|f| f.of_encounters.to_owned())
    )
}

/// The daily figures of the rollup rows `d`, as columns.
pub(super) fn of_day_rows() -> String {
    columns(|f| format!("d.{}", f.column))
}

/// The daily figures summed over a group of rows that hold them as
/// columns, and their mean satisfaction.
pub(super) fn scorecard_of_sums() -> String {
    let sum = |f: &DayFigure| format!("sum({})", f.column);
    format!("{}, {}", columns(sum), mean_satisfaction(sum))
}

/// One standard's results in scope.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardCompliance {
    pub standard_id: Uuid,
    pub code: String,
    pub element: Element,
    pub severity: Severity,
    pub met: i64,
    pub violated: i64,
}

/// A result row per standard an encounter of `{encounters}` (an alias of
/// `e`) met or violated: the revision and 1 in `met` or in `violated`.
pub(super) const RESULTS: &str = "
    select r.revision_id, r.met, r.violated
    from {encounters} e
    cross join lateral verdad_results(e.revision_ids, e.outcomes) r";

/// Met and violated results per standard, from the CTE `results`
/// (revision_id, met, violated).
pub(super) const COMPLIANCE: &str = "
    select s.id, s.code, s.element, s.severity,
           sum(x.met)::int8 as met, sum(x.violated)::int8 as violated
    from results x
    join standard_revision v on v.organisation_id = $1 and v.id = x.revision_id
    join standard s on s.organisation_id = $1 and s.id = v.standard_id
    group by s.id, s.code, s.element, s.severity";

/// The rows of COMPLIANCE.
pub(super) fn standard_compliance(rows: &[PgRow]) -> Result<Vec<StandardCompliance>> {
    rows.iter()
        .map(|row: &PgRow| {
            let element: String = row.try_get("element")?;
            let severity: String = row.try_get("severity")?;
            Ok(StandardCompliance {
                standard_id: row.try_get("id")?,
                code: row.try_get("code")?,
                element: decode(&element)?,
                severity: decode(&severity)?,
                met: row.try_get("met")?,
                violated: row.try_get("violated")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scorecard_reads_every_daily_figure_with_its_mean() {
        let columns = scorecard_of_sums();
        for figure in &DAY_FIGURES {
            assert!(columns.contains(&format!("sum({0})::int8 as {0}", figure.column)));
        }
        assert!(columns.ends_with(
            "(sum(satisfaction_sum)::numeric / nullif(sum(rated), 0))::float8 as mean_satisfaction"
        ));
    }
}
