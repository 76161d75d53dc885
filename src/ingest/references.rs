//! What an ingest keeps of each organisation between batches: the
//! organisation, its touchpoints and its standards, under the version that
//! every change to them bumps.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{
        code::Lookup, organisation::Organisation, standard::Standard, touchpoint::Touchpoint,
    },
    error::{Error, Result},
    store::{self, organisation::ForIngest},
};

/// Each organisation as an ingest last read it, with its touchpoints and
/// standards, under its `reference_version`. Every change to any of them
/// bumps the version in its own transaction, so a batch that checks the
/// version where it writes knows whether what is kept is still what it
/// would read: while nothing changes, a batch is stored in one round trip
/// instead of four. One entry per organisation that ingested, replaced when
/// its version moves.
#[derive(Clone, Default)]
pub(super) struct References {
    kept: Arc<Mutex<HashMap<Uuid, Arc<Reference>>>>,
}

pub(super) struct Reference {
    pub(super) version: i64,
    pub(super) organisation: Organisation,
    pub(super) customer_key: Option<Vec<u8>>,
    pub(super) touchpoints: Touchpoints,
    pub(super) standards: Vec<Standard>,
}

impl References {
    /// What is kept of the organisation, however old.
    pub(super) fn latest(&self, organisation_id: Uuid) -> Option<Arc<Reference>> {
        self.kept().get(&organisation_id).cloned()
    }

    /// The organisation as `found` in the caller's transaction, with its
    /// touchpoints and standards as of the same version, read on
    /// `connection` unless kept.
    pub(super) async fn get(
        &self,
        connection: &mut PgConnection,
        organisation_id: Uuid,
        found: ForIngest,
    ) -> Result<Arc<Reference>> {
        let version = found.reference_version;
        if let Some(kept) = self.kept().get(&organisation_id)
            && kept.version == version
        {
            return Ok(kept.clone());
        }
        // Read after the version, in later statements: what is read is at
        // least as new as the version says, as it would be without keeping.
        let reference = Arc::new(Reference {
            version,
            organisation: found.organisation,
            customer_key: found.customer_key,
            touchpoints: Touchpoints::new(
                store::touchpoint::list_all(&mut *connection, organisation_id).await?,
            ),
            standards: store::standard::list_active(connection, organisation_id).await?,
        });
        let mut kept = self.kept();
        // A batch that read an older version does not replace a newer one.
        if kept
            .get(&organisation_id)
            .is_none_or(|k| k.version <= version)
        {
            kept.insert(organisation_id, reference.clone());
        }
        Ok(reference)
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Reference>>> {
        // The map holds whole entries only; a panic elsewhere while it was
        // locked leaves it usable.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The organisation's touchpoints by id and by lowercase code.
pub(super) struct Touchpoints {
    all: Vec<Touchpoint>,
    by_id: HashMap<Uuid, usize>,
    by_code: HashMap<String, usize>,
}

impl Touchpoints {
    fn new(all: Vec<Touchpoint>) -> Self {
        let by_id = all.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let by_code = all
            .iter()
            .enumerate()
            .map(|(i, t)| (t.code.to_ascii_lowercase(), i))
            .collect();
        Self {
            all,
            by_id,
            by_code,
        }
    }

    pub(super) fn find(&self, lookup: &Lookup) -> Result<&Touchpoint> {
        let index = match lookup {
            Lookup::Id(id) => self.by_id.get(id),
            Lookup::Code(code) => self.by_code.get(&code.to_ascii_lowercase()),
        };
        index
            .and_then(|&i| self.all.get(i))
            .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))
    }
}
