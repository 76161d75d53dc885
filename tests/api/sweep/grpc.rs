//! The sweep through the gRPC door, and page tokens across organisations.

use std::{collections::BTreeSet, time::Duration};

use prost_types::{FieldMask, Timestamp};
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use super::{arrange_a, every_rpc, hidden, nothing_of_a};
use crate::helpers::{
    authed, demo_adt_feed, dissatisfied, feedback, hl7_file, spawn_app, webhook_to,
};

#[tokio::test]
async fn organisation_bs_key_finds_and_changes_nothing_of_organisation_as_by_any_rpc() {
    let app = spawn_app().await;
    let (a_key, a) = arrange_a(&app).await;
    let b = app.create_org("Hospital B").await;
    let b_key = b.admin_key.as_str();

    // B's watch hears nothing of a case A opens.
    let mut b_watch = app.watch(b_key, "").await;
    app.recorded(&a_key, dissatisfied("reception-desk", "his", "a-2"))
        .await;
    b_watch.assert_quiet(Duration::from_millis(500)).await;
    let mut called = BTreeSet::from(["RecoveryService/WatchRecoveryCases".to_owned()]);
    let mut rpc = |name: &str| {
        called.insert(name.to_owned());
        name.to_owned()
    };

    let before = app.fingerprint(a.organisation_id).await;
    for table in [
        "encounter",
        "touchpoint",
        "standard",
        "recovery_case",
        "api_key",
    ] {
        assert!(
            before.iter().any(|(t, n, _)| t == table && *n > 0),
            "A has no {table} rows to guard: {before:?}"
        );
    }

    // Touchpoints.
    let mut touchpoints = app.touchpoints().await;
    let id = || a.touchpoint_id.clone();
    hidden(
        &rpc("TouchpointService/GetTouchpoint"),
        touchpoints
            .get_touchpoint(authed(
                b_key,
                pb::GetTouchpointRequest {
                    id: id(),
                    code: String::new(),
                },
            ))
            .await,
    );
    let renamed = |id: String| pb::Touchpoint {
        id,
        display_name: "Taken over".into(),
        ..Default::default()
    };
    hidden(
        &rpc("TouchpointService/UpdateTouchpoint"),
        touchpoints
            .update_touchpoint(authed(
                b_key,
                pb::UpdateTouchpointRequest {
                    touchpoint: Some(renamed(id())),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("TouchpointService/ArchiveTouchpoint"),
        touchpoints
            .archive_touchpoint(authed(b_key, pb::ArchiveTouchpointRequest { id: id() }))
            .await,
    );
    hidden(
        &rpc("TouchpointService/UnarchiveTouchpoint"),
        touchpoints
            .unarchive_touchpoint(authed(b_key, pb::UnarchiveTouchpointRequest { id: id() }))
            .await,
    );
    nothing_of_a(
        &rpc("TouchpointService/ListTouchpoints"),
        touchpoints
            .list_touchpoints(authed(
                b_key,
                pb::ListTouchpointsRequest {
                    show_archived: true,
                    ..Default::default()
                },
            ))
            .await,
        |r| r.touchpoints.is_empty(),
    );
    // B's own touchpoint, made with A's code, stays B's.
    touchpoints
        .create_touchpoint(authed(
            b_key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(crate::helpers::touchpoint("reception-desk")),
            },
        ))
        .await
        .unwrap();
    rpc("TouchpointService/CreateTouchpoint");

    // Standards.
    let mut standards = app.standards().await;
    let sid = || a.standard_id.clone();
    hidden(
        &rpc("StandardService/GetStandard"),
        standards
            .get_standard(authed(
                b_key,
                pb::GetStandardRequest {
                    id: sid(),
                    code: String::new(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("StandardService/UpdateStandard"),
        standards
            .update_standard(authed(
                b_key,
                pb::UpdateStandardRequest {
                    standard: Some(pb::Standard {
                        id: sid(),
                        title: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["title".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("StandardService/ArchiveStandard"),
        standards
            .archive_standard(authed(b_key, pb::ArchiveStandardRequest { id: sid() }))
            .await,
    );
    hidden(
        &rpc("StandardService/UnarchiveStandard"),
        standards
            .unarchive_standard(authed(b_key, pb::UnarchiveStandardRequest { id: sid() }))
            .await,
    );
    nothing_of_a(
        &rpc("StandardService/ListStandards"),
        standards
            .list_standards(authed(b_key, pb::ListStandardsRequest::default()))
            .await,
        |r| r.standards.iter().all(|s| s.id != a.standard_id),
    );
    nothing_of_a(
        &rpc("StandardService/CreateStandard"),
        standards
            .create_standard(authed(
                b_key,
                pb::CreateStandardRequest {
                    standard: Some(pb::Standard {
                        touchpoint_id: id(),
                        ..Default::default()
                    }),
                },
            ))
            .await,
        |_| false,
    );
    nothing_of_a(
        &rpc("StandardService/GetServiceManual"),
        standards
            .get_service_manual(authed(b_key, pb::GetServiceManualRequest::default()))
            .await,
        |r| {
            let manual = format!("{r:?}");
            !manual.contains(&a.standard_id) && !manual.contains(&a.touchpoint_id)
        },
    );

    // API keys.
    let mut keys = app.api_keys().await;
    hidden(
        &rpc("ApiKeyService/RevokeApiKey"),
        keys.revoke_api_key(authed(
            b_key,
            pb::RevokeApiKeyRequest {
                id: a.api_key_id.clone(),
            },
        ))
        .await,
    );
    nothing_of_a(
        &rpc("ApiKeyService/ListApiKeys"),
        keys.list_api_keys(authed(
            b_key,
            pb::ListApiKeysRequest {
                show_revoked: true,
                ..Default::default()
            },
        ))
        .await,
        |r| r.api_keys.iter().all(|k| k.id != a.api_key_id),
    );
    keys.create_api_key(authed(
        b_key,
        pb::CreateApiKeyRequest {
            display_name: "B's feed".into(),
            role: pb::Role::Ingest.into(),
        },
    ))
    .await
    .unwrap();
    rpc("ApiKeyService/CreateApiKey");

    // Organisations.
    let mut organisations = app.organisations().await;
    hidden(
        &rpc("OrganisationService/GetOrganisation"),
        organisations
            .get_organisation(authed(
                b_key,
                pb::GetOrganisationRequest {
                    id: a.organisation_id.to_string(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("OrganisationService/UpdateOrganisation"),
        organisations
            .update_organisation(authed(
                b_key,
                pb::UpdateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        id: a.organisation_id.to_string(),
                        display_name: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                },
            ))
            .await,
    );

    // Journeys.
    let mut journeys = app.journeys().await;
    hidden(
        &rpc("JourneyService/GetJourney"),
        journeys
            .get_journey(authed(
                b_key,
                pb::GetJourneyRequest {
                    journey_id: a.journey_id.clone(),
                },
            ))
            .await,
    );
    // Feedback for A's journey id goes to B's journey of that id (journey
    // ids are each organisation's own): the fingerprint shows A's untouched.
    journeys
        .record_journey_feedback(authed(
            b_key,
            pb::RecordJourneyFeedbackRequest {
                journey_id: a.journey_id.clone(),
                feedback: Some(feedback(1)),
            },
        ))
        .await
        .unwrap();
    rpc("JourneyService/RecordJourneyFeedback");

    // Encounters.
    let mut encounters = app.encounters().await;
    hidden(
        &rpc("EncounterService/GetEncounter"),
        encounters
            .get_encounter(authed(
                b_key,
                pb::GetEncounterRequest {
                    id: a.encounter_id.clone(),
                },
            ))
            .await,
    );
    nothing_of_a(
        &rpc("EncounterService/ListEncounters"),
        encounters
            .list_encounters(authed(
                b_key,
                pb::ListEncountersRequest {
                    journey_id: a.journey_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        |r| r.encounters.is_empty(),
    );
    // B's key writes only into B: the same encounter lands in B, not A.
    let mut in_b = dissatisfied("reception-desk", "his", "a-1");
    in_b.customer_ref = a.customer_ref.clone();
    let stored = encounters
        .record_encounter(authed(
            b_key,
            pb::RecordEncounterRequest {
                encounter: Some(in_b.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!stored.duplicate, "B's encounter was taken for A's");
    rpc("EncounterService/RecordEncounter");
    let streamed = encounters
        .ingest_encounters(authed(
            b_key,
            tokio_stream::iter(vec![pb::IngestEncountersRequest {
                encounters: vec![pb::Encounter {
                    external_id: "a-3".into(),
                    ..in_b
                }],
            }]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.accepted, 1);
    rpc("EncounterService/IngestEncounters");
    // Erasing A's customer reference with B's key erases B's encounters
    // only (the fingerprint shows A's are all there).
    encounters
        .erase_customer(authed(
            b_key,
            pb::EraseCustomerRequest {
                customer_ref: a.customer_ref.clone(),
            },
        ))
        .await
        .unwrap();
    rpc("EncounterService/EraseCustomer");

    // Recovery cases.
    let mut recovery = app.recovery().await;
    hidden(
        &rpc("RecoveryService/GetRecoveryCase"),
        recovery
            .get_recovery_case(authed(
                b_key,
                pb::GetRecoveryCaseRequest {
                    id: a.case_id.clone(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("RecoveryService/UpdateRecoveryCase"),
        recovery
            .update_recovery_case(authed(
                b_key,
                pb::UpdateRecoveryCaseRequest {
                    recovery_case: Some(pb::RecoveryCase {
                        id: a.case_id.clone(),
                        assignee: "intruder".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["assignee".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("RecoveryService/AcknowledgeRecoveryCase"),
        recovery
            .acknowledge_recovery_case(authed(
                b_key,
                pb::AcknowledgeRecoveryCaseRequest {
                    id: a.case_id.clone(),
                },
            ))
            .await,
    );
    nothing_of_a(
        &rpc("RecoveryService/ListRecoveryCases"),
        recovery
            .list_recovery_cases(authed(b_key, pb::ListRecoveryCasesRequest::default()))
            .await,
        |r| r.recovery_cases.iter().all(|c| c.id != a.case_id),
    );

    // Analyses, scoped to A's touchpoint over A's day.
    let scope = || {
        Some(pb::AnalysisScope {
            start_time: Some(Timestamp {
                seconds: 1_780_304_400 - 86_400,
                nanos: 0,
            }),
            end_time: Some(Timestamp {
                seconds: 1_780_304_400 + 86_400,
                nanos: 0,
            }),
            touchpoint_ids: vec![a.touchpoint_id.clone()],
            ..Default::default()
        })
    };
    let mut analyses = app.analyses().await;
    nothing_of_a(
        &rpc("AnalysisService/GetScorecard"),
        analyses
            .get_scorecard(authed(b_key, pb::GetScorecardRequest { scope: scope() }))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetMotCycle"),
        analyses
            .get_mot_cycle(authed(
                b_key,
                pb::GetMotCycleRequest {
                    scope: scope(),
                    max_variants: 10,
                    ..Default::default()
                },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetMotCycleDiagram"),
        analyses
            .get_mot_cycle_diagram(authed(
                b_key,
                pb::GetMotCycleDiagramRequest {
                    scope: scope(),
                    format: pb::DiagramFormat::Dot.into(),
                    ..Default::default()
                },
            ))
            .await,
        |r| r.no_data && r.touchpoints_drawn == 0 && !r.content.contains("reception"),
    );
    nothing_of_a(
        &rpc("AnalysisService/GetJourneyOutcomes"),
        analyses
            .get_journey_outcomes(authed(
                b_key,
                pb::GetJourneyOutcomesRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetFirstImpressions"),
        analyses
            .get_first_impressions(authed(
                b_key,
                pb::GetFirstImpressionsRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetPriorityMatrix"),
        analyses
            .get_priority_matrix(authed(
                b_key,
                pb::GetPriorityMatrixRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetGuidelineBreakdown"),
        analyses
            .get_guideline_breakdown(authed(
                b_key,
                pb::GetGuidelineBreakdownRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetTrend"),
        analyses
            .get_trend(authed(
                b_key,
                pb::GetTrendRequest {
                    scope: scope(),
                    figure: pb::TrendFigure::Encounters.into(),
                    granularity: pb::Granularity::Day.into(),
                    per_touchpoint: true,
                },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetComplianceReport"),
        analyses
            .get_compliance_report(authed(
                b_key,
                pb::GetComplianceReportRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetRecoveryPerformance"),
        analyses
            .get_recovery_performance(authed(
                b_key,
                pb::GetRecoveryPerformanceRequest {
                    scope: scope(),
                    ..Default::default()
                },
            ))
            .await,
        |r| r.no_data,
    );
    let export = analyses
        .export_event_log(authed(
            b_key,
            pb::ExportEventLogRequest {
                scope: scope(),
                format: pb::EventLogFormat::Csv.into(),
            },
        ))
        .await;
    rpc("AnalysisService/ExportEventLog");
    match export {
        Ok(response) => {
            let mut stream = response.into_inner();
            let mut log = Vec::new();
            while let Some(piece) = stream.message().await.unwrap() {
                log.extend(piece.chunk);
            }
            let log = String::from_utf8(log).unwrap();
            assert_eq!(
                log,
                "case_id,activity,timestamp,resource,activity_name,sequence\n"
            );
        }
        Err(status) => assert!(
            matches!(status.code(), Code::NotFound | Code::InvalidArgument),
            "{status:?}"
        ),
    }

    // Feeds: B neither sees nor changes A's, nor claims A's sender.
    let mut feeds = app.feeds().await;
    hidden(
        &rpc("FeedService/GetFeed"),
        feeds
            .get_feed(authed(
                b_key,
                pb::GetFeedRequest {
                    id: a.feed_id.clone(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("FeedService/UpdateFeed"),
        feeds
            .update_feed(authed(
                b_key,
                pb::UpdateFeedRequest {
                    feed: Some(pb::Feed {
                        id: a.feed_id.clone(),
                        display_name: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("FeedService/ArchiveFeed"),
        feeds
            .archive_feed(authed(
                b_key,
                pb::ArchiveFeedRequest {
                    id: a.feed_id.clone(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("FeedService/ListFeedRejections"),
        feeds
            .list_feed_rejections(authed(
                b_key,
                pb::ListFeedRejectionsRequest {
                    feed_id: a.feed_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
    );
    hidden(
        &rpc("FeedService/PreviewFeedMessage"),
        feeds
            .preview_feed_message(authed(
                b_key,
                pb::PreviewFeedMessageRequest {
                    feed_id: a.feed_id.clone(),
                    message: String::from_utf8(hl7_file("a04.hl7")).unwrap(),
                },
            ))
            .await,
    );
    nothing_of_a(
        &rpc("FeedService/ListFeeds"),
        feeds
            .list_feeds(authed(
                b_key,
                pb::ListFeedsRequest {
                    show_archived: true,
                    ..Default::default()
                },
            ))
            .await,
        |r| r.feeds.is_empty(),
    );
    let claim = feeds
        .create_feed(authed(
            b_key,
            pb::CreateFeedRequest {
                feed: Some(demo_adt_feed()),
            },
        ))
        .await;
    rpc("FeedService/CreateFeed");
    assert!(claim.is_err(), "B took A's sender: {claim:?}");

    // Webhooks: B neither sees, changes, rotates, reads the deliveries of,
    // redelivers to nor deletes A's.
    let mut webhooks = app.webhooks().await;
    let wid = || a.webhook_id.clone();
    hidden(
        &rpc("WebhookService/GetWebhook"),
        webhooks
            .get_webhook(authed(b_key, pb::GetWebhookRequest { id: wid() }))
            .await,
    );
    hidden(
        &rpc("WebhookService/UpdateWebhook"),
        webhooks
            .update_webhook(authed(
                b_key,
                pb::UpdateWebhookRequest {
                    webhook: Some(pb::Webhook {
                        id: wid(),
                        url: "https://intruder.example.org/".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["url".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("WebhookService/RotateWebhookSecret"),
        webhooks
            .rotate_webhook_secret(authed(
                b_key,
                pb::RotateWebhookSecretRequest {
                    id: wid(),
                    grace_period: None,
                },
            ))
            .await,
    );
    hidden(
        &rpc("WebhookService/ListWebhookDeliveries"),
        webhooks
            .list_webhook_deliveries(authed(
                b_key,
                pb::ListWebhookDeliveriesRequest {
                    webhook_id: wid(),
                    ..Default::default()
                },
            ))
            .await,
    );
    hidden(
        &rpc("WebhookService/RedeliverWebhookEvent"),
        webhooks
            .redeliver_webhook_event(authed(
                b_key,
                pb::RedeliverWebhookEventRequest {
                    webhook_id: wid(),
                    event_id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                },
            ))
            .await,
    );
    hidden(
        &rpc("WebhookService/DeleteWebhook"),
        webhooks
            .delete_webhook(authed(b_key, pb::DeleteWebhookRequest { id: wid() }))
            .await,
    );
    nothing_of_a(
        &rpc("WebhookService/ListWebhooks"),
        webhooks
            .list_webhooks(authed(b_key, pb::ListWebhooksRequest::default()))
            .await,
        |r| r.webhooks.is_empty(),
    );
    // B's own webhook on A's touchpoint code names B's touchpoint, if any.
    let mut bs = webhook_to("https://intruder.example.org/", &["recovery_case.opened"]);
    bs.touchpoint_codes = vec!["reception-desk".into()];
    let _ = webhooks
        .create_webhook(authed(
            b_key,
            pb::CreateWebhookRequest { webhook: Some(bs) },
        ))
        .await;
    rpc("WebhookService/CreateWebhook");

    assert_eq!(app.fingerprint(a.organisation_id).await, before);
    assert_eq!(called, every_rpc(), "RPCs the sweep does not call");
}

#[tokio::test]
async fn page_tokens_work_only_for_their_organisation_query_and_bytes() {
    let app = spawn_app().await;
    let a_key = app.demo_key().await;
    let b = app.create_org("Hospital B").await;
    let page = |key: &str, token: &str| {
        let key = key.to_owned();
        let token = token.to_owned();
        let app = &app;
        async move {
            app.touchpoints()
                .await
                .list_touchpoints(authed(
                    &key,
                    pb::ListTouchpointsRequest {
                        page_size: 5,
                        page_token: token,
                        ..Default::default()
                    },
                ))
                .await
        }
    };
    let first = page(&a_key, "").await.unwrap().into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());
    // A's own next page works.
    let second = page(&a_key, &token).await.unwrap().into_inner();
    assert_eq!(second.touchpoints.len(), 5);

    // B replays A's token with the same filters.
    let status = page(&b.admin_key, &token).await.unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
    assert!(
        status.message().contains("not a token returned"),
        "{status:?}"
    );

    // Any altered character is refused.
    for at in [3, token.len() / 2, token.len() - 2] {
        let mut altered: Vec<char> = token.chars().collect();
        altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        let status = page(&a_key, &altered).await.unwrap_err();
        assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
    }

    // A token of another method's query.
    let status = app
        .standards()
        .await
        .list_standards(authed(
            &a_key,
            pb::ListStandardsRequest {
                page_token: token.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
}
