//! Operator tasks run from the command line rather than over gRPC:
//! creating organisations and their first key, and the demo hospital.

use sqlx::{PgConnection, PgPool};
use uuid::{Uuid, uuid};

use crate::{
    api::api_key_service::{CreatedKey, insert_key},
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, Organisation, OrganisationKind},
        role::Role,
        text::required_line,
        touchpoint::{Channel, NewTouchpoint, Occurrence, Stage},
    },
    error::{Error, Result},
    store,
};

/// The demo hospital's fixed id, so `serve --demo` finds it again.
pub const DEMO_ORGANISATION_ID: Uuid = uuid!("00000000-0000-4000-8000-00000000d3e0");

const DEMO_KEY_NAME: &str = "demo admin key";

/// An organisation with the secret of its first admin key.
pub struct CreatedOrganisation {
    pub organisation: Organisation,
    pub admin_key: CreatedKey,
}

/// Creates an organisation and its first admin key in one transaction.
pub async fn create_organisation(
    pool: &PgPool,
    new: NewOrganisation,
) -> Result<CreatedOrganisation> {
    let id = Uuid::now_v7();
    let mut tx = store::begin_for(pool, id).await?;
    let created = insert_organisation(&mut tx, id, new, "first admin key").await?;
    tx.commit().await?;
    Ok(created)
}

/// Inserts an organisation and an admin key named `key_name`; the
/// transaction must act for `id`.
async fn insert_organisation(
    tx: &mut PgConnection,
    id: Uuid,
    new: NewOrganisation,
    key_name: &str,
) -> Result<CreatedOrganisation> {
    let new = NewOrganisation {
        display_name: required_line("name", &new.display_name, 200)?,
        ..new
    };
    if !store::organisation::time_zone_exists(tx, &new.time_zone).await? {
        return Err(Error::invalid(
            "time_zone",
            format!(
                "{:?} is not a time zone name PostgreSQL knows, such as Asia/Seoul",
                new.time_zone
            ),
        ));
    }
    let organisation = store::organisation::insert(tx, id, &new).await?;
    let first_key = NewApiKey {
        display_name: key_name.to_owned(),
        role: Role::Admin,
    };
    let admin_key = insert_key(tx, id, &first_key).await?;
    Ok(CreatedOrganisation {
        organisation,
        admin_key,
    })
}

/// Creates the demo hospital with its MOT cycle the first time. Every later
/// call makes a fresh demo admin key and revokes the demo keys made before,
/// because the secret of a key cannot be shown twice.
pub async fn ensure_demo(pool: &PgPool) -> Result<CreatedKey> {
    let id = DEMO_ORGANISATION_ID;
    let mut tx = store::begin_for(pool, id).await?;
    if store::organisation::get(&mut tx, id).await?.is_none() {
        let demo = NewOrganisation {
            display_name: "Verdad Demo Hospital".to_owned(),
            kind: OrganisationKind::Hospital,
            time_zone: "Asia/Seoul".to_owned(),
        };
        let created = insert_organisation(&mut tx, id, demo, DEMO_KEY_NAME).await?;
        for touchpoint in demo_cycle() {
            store::touchpoint::insert(&mut tx, id, &touchpoint).await?;
        }
        tx.commit().await?;
        return Ok(created.admin_key);
    }
    let new = NewApiKey {
        display_name: DEMO_KEY_NAME.to_owned(),
        role: Role::Admin,
    };
    let created = insert_key(&mut tx, id, &new).await?;
    store::api_key::revoke_named(&mut tx, id, DEMO_KEY_NAME, created.key.id).await?;
    tx.commit().await?;
    Ok(created)
}

/// The demo hospital's designed MOT cycle: from the phone booking to the
/// happy call after care.
fn demo_cycle() -> Vec<NewTouchpoint> {
    use Channel::{InPerson, Phone, Remote};
    use Stage::{PostService, PreService, Service};
    let cycle: [(&str, &str, Stage, Channel, bool, &str); 11] = [
        (
            "phone-booking",
            "Phone booking",
            PreService,
            Phone,
            true,
            "The call centre books the visit: the first voice of the hospital.",
        ),
        (
            "website",
            "Website",
            PreService,
            Remote,
            false,
            "Directions, departments and online booking on the hospital's home page.",
        ),
        (
            "entrance-guard",
            "Entrance guard",
            PreService,
            InPerson,
            true,
            "The security guard at the entrance: the first person a visitor meets, inside the first 15 seconds.",
        ),
        (
            "lobby",
            "Lobby",
            PreService,
            InPerson,
            false,
            "Signage and the way from the entrance to the lifts and the desks.",
        ),
        (
            "reception-desk",
            "Reception desk",
            Service,
            InPerson,
            true,
            "Registration and the first human greeting at the front desk.",
        ),
        (
            "waiting-area",
            "Waiting area",
            Service,
            InPerson,
            true,
            "Waiting for the doctor: waiting time, seating and being kept informed.",
        ),
        (
            "consultation-room",
            "Consultation room",
            Service,
            InPerson,
            true,
            "The consultation with the doctor.",
        ),
        (
            "examination",
            "Examination",
            Service,
            InPerson,
            false,
            "Tests and imaging ordered in the consultation.",
        ),
        (
            "payment",
            "Payment",
            PostService,
            InPerson,
            false,
            "Paying at the cashier's desk or kiosk.",
        ),
        (
            "pharmacy",
            "Pharmacy",
            PostService,
            InPerson,
            false,
            "Collecting the prescription and the explanation of how to take it.",
        ),
        (
            "happy-call",
            "Post-visit happy call",
            PostService,
            Phone,
            true,
            "A call a few days after care to ask how the patient is and how the visit went.",
        ),
    ];
    cycle
        .into_iter()
        .zip(1..)
        .map(
            |((code, name, stage, channel, key, description), position)| NewTouchpoint {
                code: code.to_owned(),
                display_name: name.to_owned(),
                description: description.to_owned(),
                stage,
                channel,
                key,
                occurrence: Occurrence::Routine,
                cycle_position: position * 10,
            },
        )
        .collect()
}

/// Whether the organisation `id` exists.
pub async fn organisation_exists(pool: &PgPool, id: Uuid) -> Result<bool> {
    let mut tx = store::begin_for(pool, id).await?;
    let exists = store::organisation::get(&mut tx, id).await?.is_some();
    tx.commit().await?;
    Ok(exists)
}
