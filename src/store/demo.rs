//! What the demo hospital's history needs besides its encounters: the
//! journey feedback of a discharge survey and the work on recovery cases
//! that a quality team would have done over the weeks it covers.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Gives two journeys in five feedback that follows their encounters
/// (a failure lowers it), answered a day after the journey's last contact.
/// Journeys that have feedback keep it. Returns how many were given some.
pub async fn add_feedback(connection: &mut PgConnection, organisation_id: Uuid) -> Result<u64> {
    let added = sqlx::query(
        "insert into journey_feedback
             (organisation_id, journey_id, overall_satisfaction, likelihood_to_recommend,
              complete_time, content_hash)
         select organisation_id, journey_id,
                greatest(1, least(5, round(avg(coalesce(satisfaction, 4)))::int
                                     - (case when bool_or(failed) then 1 else 0 end))),
                greatest(0, least(10, round(avg(coalesce(satisfaction, 4)) * 2)::int
                                      - (case when bool_or(failed) then 3 else 0 end))),
                least(max(occur_time) + interval '1 day', now()),
                sha256(convert_to(journey_id, 'UTF8'))
         from encounter
         where organisation_id = $1 and abs(hashtext(journey_id)) % 5 < 2
         group by organisation_id, journey_id
         on conflict do nothing",
    )
    .bind(organisation_id)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(added)
}

/// Dates each case of the history to its encounter, as a live feed would
/// have opened it, and settles the older ones as a quality team would
/// have: three in four resolved, most within their deadline, some in
/// progress, with a follow-up satisfaction where the customer answered.
/// Returns how many were resolved.
pub async fn settle_cases(connection: &mut PgConnection, organisation_id: Uuid) -> Result<u64> {
    let resolved = sqlx::query_scalar::<_, i64>(
        "with planned as (
             select c.id, e.occur_time + interval '2 minutes' as opened,
                    o.recovery_deadline_seconds as deadline,
                    abs(hashtext(c.id::text)) as draw,
                    e.occur_time < now() - interval '3 days' as old
             from recovery_case c
             join encounter e on e.organisation_id = c.organisation_id and e.id = c.encounter_id
             join organisation o on o.id = c.organisation_id
             where c.organisation_id = $1
         ),
         settled as (
             update recovery_case c
             set open_time = p.opened,
                 due_time = p.opened + make_interval(secs => p.deadline),
                 status = case when not p.old then c.status
                               when p.draw % 8 < 6 then 'resolved'
                               else 'in_progress' end,
                 assignee = case when p.old then 'quality-team' else c.assignee end,
                 resolve_time = case when p.old and p.draw % 8 < 6
                                     then p.opened + make_interval(hours => 1 + p.draw % 40)
                                end,
                 resolution_note = case when p.old and p.draw % 8 < 6
                                        then 'Called the patient back, apologised and \
explained what went wrong and what will change.'
                                        else c.resolution_note end,
                 follow_up_satisfaction = case when p.old and p.draw % 8 < 6 and p.draw % 3 > 0
                                               then 3 + (p.draw % 3)::int
                                          end
             from planned p
             where c.organisation_id = $1 and c.id = p.id
             returning c.status
         )
         select count(*) filter (where status = 'resolved') from settled",
    )
    .bind(organisation_id)
    .fetch_one(connection)
    .await?;
    Ok(u64::try_from(resolved).unwrap_or(0))
}
