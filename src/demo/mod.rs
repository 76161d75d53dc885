//! The demo hospital of `serve --demo`: the MOT cycle of the design brief,
//! from the phone booking to the happy call after care, with a realistic set
//! of service standards and, made once with the hospital, some 90 days of
//! visits (`history`), so that a new user can try every call at once.

pub mod history;
pub mod visits;

use sqlx::{PgConnection, PgPool};
use uuid::{Uuid, uuid};

use crate::{
    app::api_keys::{CreatedKey, insert_key},
    app::operator::insert_organisation,
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, OrganisationKind},
        role::Role,
        standard::{
            Comparison::{self, GreaterOrEqual, LessOrEqual},
            Element::{Hardware, Humanware, Software},
            MetricField::{self, FirstResponseSeconds, Satisfaction, WaitSeconds},
            NewStandard, Rule,
            Severity::{Critical, Minor},
        },
        touchpoint::{Channel, NewTouchpoint, Occurrence, Stage},
    },
    error::Result,
    store,
};

/// The demo hospital's fixed id, so `serve --demo` finds it again.
pub const DEMO_ORGANISATION_ID: Uuid = uuid!("00000000-0000-4000-8000-00000000d3e0");

const DEMO_KEY_NAME: &str = "demo admin key";

/// Creates the demo hospital the first time, with its first admin key, and
/// on every call adds the demo touchpoints and standards it lacks (by code;
/// what a user changed stays as it is). The key comes back only when the
/// hospital is created: its secret cannot be shown twice, and a later run
/// leaves it working rather than revoke what a user has exported.
pub async fn ensure_demo(pool: &PgPool) -> Result<Option<CreatedKey>> {
    let id = DEMO_ORGANISATION_ID;
    let mut tx = store::begin_for(pool, id).await?;
    let key = if store::organisation::get(&mut tx, id, false)
        .await?
        .is_none()
    {
        let demo = NewOrganisation {
            display_name: "Verdad Demo Hospital".to_owned(),
            kind: OrganisationKind::Hospital,
            time_zone: "Asia/Seoul".to_owned(),
        };
        Some(
            insert_organisation(&mut tx, id, demo, DEMO_KEY_NAME)
                .await?
                .admin_key,
        )
    } else {
        None
    };
    add_missing(&mut tx, id).await?;
    tx.commit().await?;
    Ok(key)
}

/// A new admin key of the demo hospital, which must exist.
pub async fn new_admin_key(pool: &PgPool) -> Result<CreatedKey> {
    let id = DEMO_ORGANISATION_ID;
    let mut tx = store::begin_for(pool, id).await?;
    let new = NewApiKey {
        display_name: DEMO_KEY_NAME.to_owned(),
        role: Role::Admin,
    };
    let created = insert_key(&mut tx, id, &new).await?;
    tx.commit().await?;
    Ok(created)
}

async fn add_missing(tx: &mut PgConnection, org: Uuid) -> Result<()> {
    for touchpoint in cycle() {
        if store::touchpoint::get_by_code(tx, org, &touchpoint.code)
            .await?
            .is_none()
        {
            store::touchpoint::insert(tx, org, &touchpoint).await?;
        }
    }
    for (touchpoint_code, standard) in standards() {
        if store::standard::get_by_code(tx, org, &standard.code)
            .await?
            .is_some()
        {
            continue;
        }
        let touchpoint = match touchpoint_code {
            Some(code) => match store::touchpoint::get_by_code(tx, org, code).await? {
                Some(touchpoint) if !touchpoint.is_archived() => Some(touchpoint.id),
                // The user archived the demo touchpoint: respect that.
                _ => continue,
            },
            None => None,
        };
        store::standard::insert(tx, org, &standard, touchpoint).await?;
    }
    Ok(())
}

/// The demo hospital's designed MOT cycle.
fn cycle() -> Vec<NewTouchpoint> {
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

fn metric(field: MetricField, comparison: Comparison, threshold: f64) -> Rule {
    Rule::Metric {
        field,
        comparison,
        threshold,
    }
}

/// The demo hospital's service standards, each with the code of its
/// touchpoint (`None`: every touchpoint).
fn standards() -> Vec<(Option<&'static str>, NewStandard)> {
    let list = [
        (
            Some("phone-booking"),
            "phone-answer-20s",
            "Answer the phone within 20 seconds",
            Software,
            Critical,
            metric(FirstResponseSeconds, LessOrEqual, 20.0),
            "Answer before the fourth ring.\n\
             Say the hospital's name, your department and your name: \
             \"Verdad Hospital booking centre, this is Kim speaking. How may I help you?\"\n\
             If the caller must wait, say why and for how long before putting them on hold.",
        ),
        (
            Some("website"),
            "online-booking-5min",
            "Online booking done within 5 minutes",
            Software,
            Minor,
            metric(MetricField::DurationSeconds, LessOrEqual, 300.0),
            "The booking form asks only what the visit needs. A patient who gives up \
             is called back by the booking centre on the next working day.",
        ),
        (
            Some("entrance-guard"),
            "entrance-greeting-15s",
            "Greet every visitor within 15 seconds",
            Humanware,
            Critical,
            metric(FirstResponseSeconds, LessOrEqual, 15.0),
            "The first 15 seconds decide the hospital's image.\n\
             Make eye contact, nod and greet: \"Good morning, welcome. Where are you going today?\"\n\
             Point the way with an open hand, never a finger, and walk first-time visitors \
             to the lobby information point.",
        ),
        (
            Some("lobby"),
            "lobby-signage",
            "Signage leads from the entrance to every desk",
            Hardware,
            Minor,
            Rule::Observed,
            "Audited monthly by a mystery shopper: from the entrance, the reception desk, \
             the lifts and the toilets can be found without asking.\n\
             Report a missing or misleading sign to facilities the same day.",
        ),
        (
            Some("reception-desk"),
            "reception-greeting-15s",
            "Greet the patient at the desk within 15 seconds",
            Humanware,
            Critical,
            metric(FirstResponseSeconds, LessOrEqual, 15.0),
            "Stand up or look up from the screen as soon as the patient reaches the desk.\n\
             Greet first and use the patient's name once you know it.\n\
             If you are busy with someone else, acknowledge the next patient with a nod \
             and \"I will be with you in a moment\".",
        ),
        (
            Some("waiting-area"),
            "waiting-30min",
            "Waiting time at most 30 minutes",
            Software,
            Critical,
            metric(WaitSeconds, LessOrEqual, 1800.0),
            "Keep the waiting board current.\n\
             When a clinic runs late, tell every waiting patient how long the delay is \
             and why, and offer to rebook.",
        ),
        (
            Some("consultation-room"),
            "consultation-explained",
            "The doctor explains the diagnosis and the next steps",
            Humanware,
            Minor,
            Rule::Observed,
            "Asked in the discharge survey: \"Did the doctor explain your condition and what \
             happens next in words you understood?\"",
        ),
        (
            Some("payment"),
            "payment-wait-10min",
            "Waiting to pay at most 10 minutes",
            Software,
            Minor,
            metric(WaitSeconds, LessOrEqual, 600.0),
            "Open a second counter or point patients to the kiosks when more than five \
             people queue.",
        ),
        (
            Some("pharmacy"),
            "medication-explained",
            "Every medicine is explained when it is handed over",
            Humanware,
            Minor,
            Rule::Observed,
            "Say what each medicine is for, when and how to take it, and what to do \
             about side effects. Check that the patient understood.",
        ),
        (
            Some("happy-call"),
            "happy-call-48h",
            "Happy call within 48 hours of the visit",
            Software,
            Minor,
            metric(WaitSeconds, LessOrEqual, 172_800.0),
            "For the happy call, wait_seconds is the time from the end of the visit to the call.\n\
             Ask how the patient is, whether the medicine helps, and how the visit went. \
             Open a recovery case for every complaint you hear.",
        ),
        (
            None,
            "name-badge",
            "Staff wear a visible name badge",
            Humanware,
            Minor,
            Rule::Observed,
            "Checked on every supervisor round. The badge is worn on the chest, \
             face out, with the name readable from two metres.",
        ),
        (
            None,
            "satisfied-customer",
            "The customer leaves satisfied",
            Humanware,
            Minor,
            metric(Satisfaction, GreaterOrEqual, 4.0),
            "Every contact ends with the question \"Is there anything else I can do for you?\"",
        ),
    ];
    list.into_iter()
        .map(
            |(touchpoint, code, title, element, severity, rule, guidance)| {
                (
                    touchpoint,
                    NewStandard {
                        code: code.to_owned(),
                        title: title.to_owned(),
                        touchpoint: None,
                        element,
                        severity,
                        guidance: guidance.to_owned(),
                        rule,
                    },
                )
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{code::parse_code, standard::TITLE_MAX_CHARS};

    #[test]
    fn the_demo_standards_pass_the_checks_a_user_would_face() {
        let codes: Vec<String> = cycle().into_iter().map(|t| t.code).collect();
        for (touchpoint, standard) in standards() {
            assert!(parse_code("code", &standard.code).is_ok());
            assert!(standard.title.chars().count() <= TITLE_MAX_CHARS);
            if let Some(code) = touchpoint {
                assert!(codes.iter().any(|c| c == code), "no touchpoint {code}");
            }
            if let Rule::Metric {
                field,
                comparison,
                threshold,
            } = standard.rule
            {
                assert!(Rule::metric(field, comparison, threshold, "t").is_ok());
            }
        }
    }
}
