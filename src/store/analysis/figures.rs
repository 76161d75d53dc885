//! The figures more than one analysis reads: compliance per standard, from
//! the encounters in scope (`outcomes`) and from the rollups and the
//! encounters at a scope's edges (`rollup`).

use sqlx::{Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    domain::standard::{Element, Severity},
    error::Result,
    store::decode,
};

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

/// A result row per evaluation of encounters `e`: the revision and 1 in
/// `met` or in `violated`. Each encounter's outcome letters pair with the
/// revisions it was evaluated against.
pub(super) const RESULTS: &str = "
    select r.revision_id, (r.outcome = 'm')::int as met, (r.outcome = 'v')::int as violated
    from {encounters} e
    cross join lateral unnest(e.revision_ids, string_to_array(e.outcomes, null))
        as r(revision_id, outcome)
    where r.outcome <> 'n'";

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
