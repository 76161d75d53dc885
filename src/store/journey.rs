//! Journey feedback.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{domain::journey::JourneyFeedback, error::Result};

/// Stored feedback, its content digest and when it arrived.
pub struct StoredFeedback {
    pub feedback: JourneyFeedback,
    pub content_hash: Vec<u8>,
    pub receive_time: DateTime<Utc>,
}

struct FeedbackRow {
    overall_satisfaction: Option<i16>,
    likelihood_to_recommend: Option<i16>,
    complete_time: DateTime<Utc>,
    comment: String,
    content_hash: Vec<u8>,
    receive_time: DateTime<Utc>,
}

impl From<FeedbackRow> for StoredFeedback {
    fn from(row: FeedbackRow) -> Self {
        StoredFeedback {
            feedback: JourneyFeedback {
                overall_satisfaction: row.overall_satisfaction.map(i32::from),
                likelihood_to_recommend: row.likelihood_to_recommend.map(i32::from),
                complete_time: row.complete_time,
                comment: row.comment,
            },
            content_hash: row.content_hash,
            receive_time: row.receive_time,
        }
    }
}

/// Stores the feedback of a journey unless it has some; returns whether it
/// was stored.
pub async fn insert_feedback(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
    feedback: &JourneyFeedback,
    content_hash: &[u8],
) -> Result<bool> {
    let small = |v: Option<i32>| v.and_then(|v| i16::try_from(v).ok());
    let inserted = sqlx::query!(
        r#"insert into journey_feedback
               (organisation_id, journey_id, overall_satisfaction, likelihood_to_recommend,
                complete_time, comment, content_hash)
           values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (organisation_id, journey_id) do nothing"#,
        organisation_id,
        journey_id,
        small(feedback.overall_satisfaction),
        small(feedback.likelihood_to_recommend),
        feedback.complete_time,
        feedback.comment,
        content_hash,
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether any encounter of the journey is stored.
pub async fn has_encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
) -> Result<bool> {
    let found = sqlx::query_scalar!(
        r#"select exists (
               select 1 from encounter where organisation_id = $1 and journey_id = $2
           ) as "found!""#,
        organisation_id,
        journey_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(found)
}

/// The feedback of a journey, if any.
pub async fn feedback(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
) -> Result<Option<StoredFeedback>> {
    let row = sqlx::query_as!(
        FeedbackRow,
        r#"select overall_satisfaction, likelihood_to_recommend, complete_time, comment,
                  content_hash, receive_time
           from journey_feedback
           where organisation_id = $1 and journey_id = $2"#,
        organisation_id,
        journey_id,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Into::into))
}
