//! Feeds: created, read, changed and archived by admins, with the messages
//! they refused.

use chrono_tz::Tz;
use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit};
use crate::{
    domain::{
        code::Lookup,
        feed::{Feed, FeedChanges, Mapping, NewFeed, Rejection},
        paging::{Listing, PageToken},
        violation::FieldViolation,
    },
    error::{Error, Result},
    store,
};

/// A feed's refusals to list.
#[derive(Debug, Clone)]
pub struct RejectionsRequest {
    pub feed_id: Uuid,
    pub list: ListRequest<()>,
}

impl App {
    pub async fn create_feed(&self, caller: &Caller, new: Parsed<NewFeed>) -> Result<Feed> {
        let org = permit(caller, Operation::CreateFeed)?;
        let new = new?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        check_touchpoints(&mut tx, org, &new.mapping).await?;
        let feed = store::feed::insert(&mut tx, org, &new).await?;
        tx.commit().await?;
        Ok(feed)
    }

    pub async fn get_feed(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Feed> {
        let org = permit(caller, Operation::GetFeed)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let feed = found(store::feed::get(&mut tx, org, id).await?, id)?;
        tx.commit().await?;
        Ok(feed)
    }

    pub async fn list_feeds(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<bool>>,
    ) -> Result<Listing<Feed>> {
        let org = permit(caller, Operation::ListFeeds)?;
        let ListRequest {
            size,
            filter: show_archived,
            page_token,
        } = request?;
        let query = self
            .tokens
            .query(org, &format!("feeds show_archived={show_archived}"));
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let mut tx = store::begin_for(&self.pool, org).await?;
        let rows = store::feed::list(&mut tx, org, show_archived, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|f| (f.id, f)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn update_feed(
        &self,
        caller: &Caller,
        update: Parsed<(Uuid, FeedChanges)>,
    ) -> Result<Feed> {
        let org = permit(caller, Operation::UpdateFeed)?;
        let (id, changes) = update?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut feed = found(store::feed::get(&mut tx, org, id).await?, id)?;
        feed.check_changeable()?;
        changes
            .apply_to(&mut feed)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        check_touchpoints(&mut tx, org, &feed.mapping).await?;
        let feed = store::feed::update(&mut tx, org, &feed).await?;
        tx.commit().await?;
        Ok(feed)
    }

    pub async fn archive_feed(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Feed> {
        let org = permit(caller, Operation::ArchiveFeed)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let feed = found(store::feed::get(&mut tx, org, id).await?, id)?;
        feed.check_changeable()?;
        let feed = store::feed::archive(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(feed)
    }

    pub async fn list_feed_rejections(
        &self,
        caller: &Caller,
        request: Parsed<RejectionsRequest>,
    ) -> Result<Listing<Rejection>> {
        let org = permit(caller, Operation::ListFeedRejections)?;
        let RejectionsRequest {
            feed_id,
            list: ListRequest {
                size, page_token, ..
            },
        } = request?;
        let query = self
            .tokens
            .query(org, &format!("feed rejections {feed_id}"));
        let before = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let mut tx = store::begin_for(&self.pool, org).await?;
        found(store::feed::get(&mut tx, org, feed_id).await?, feed_id)?;
        let rows = store::feed::list_rejections(&mut tx, org, feed_id, before, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|r| (r.id, r)).collect();
        Ok(Listing::new(rows, size, query))
    }
}

/// A time zone the organisation stores, which its checks let in only when
/// PostgreSQL knows it; one chrono-tz lacks is the server's trouble.
pub(super) fn time_zone(name: &str) -> Result<Tz> {
    name.parse()
        .map_err(|_| Error::internal(format!("the organisation's time zone {name:?} is unknown")))
}

/// The time zone of `org`, in which feeds read times without an offset.
pub(super) async fn organisation_zone(
    connection: &mut sqlx::PgConnection,
    org: Uuid,
) -> Result<Tz> {
    let organisation = store::organisation::get(connection, org, false)
        .await?
        .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
    time_zone(&organisation.time_zone)
}

pub(super) fn found(feed: Option<Feed>, id: Uuid) -> Result<Feed> {
    feed.ok_or_else(|| Error::not_found("feed", id.to_string()))
}

/// Every touchpoint a mapping's rules name must be the organisation's; a
/// rule naming another is refused with its field.
async fn check_touchpoints(
    connection: &mut sqlx::PgConnection,
    org: Uuid,
    mapping: &Mapping,
) -> Result<()> {
    let named = mapping.touchpoint_codes();
    let lookups: Vec<Lookup> = named
        .iter()
        .map(|(_, code)| Lookup::Code((*code).to_owned()))
        .collect();
    if let Err(missing) = store::touchpoint::resolve(connection, org, &lookups).await? {
        let violations = named
            .iter()
            .filter(|(_, code)| missing.to_string().eq_ignore_ascii_case(code))
            .map(|(field, code)| {
                FieldViolation::new(
                    field.clone(),
                    format!("names touchpoint {code:?}, which the organisation does not have"),
                )
            })
            .collect();
        return Err(Error::InvalidArgument(violations));
    }
    Ok(())
}
