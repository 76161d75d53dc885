//! Answers that could grow past the message limit, each driven to its
//! limit: every request that passes validation gets an answer that fits
//! (a page, a capped list with what was left out counted), or is refused
//! before the work with what to narrow.

use std::collections::HashSet;

use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, assert_error, at, authed, encounter, fixture_day, spawn_app, spawn_app_with, standard,
    touchpoint, violated_fields,
};

/// Creates `count` touchpoints `tp-0000`, … over the API, several at once.
async fn many_touchpoints(app: &TestApp, key: &str, count: usize) -> Vec<String> {
    let codes: Vec<String> = (0..count).map(|n| format!("tp-{n:04}")).collect();
    for chunk in codes.chunks(50) {
        let creating = chunk.iter().map(|code| async move {
            app.touchpoints()
                .await
                .create_touchpoint(authed(
                    key,
                    pb::CreateTouchpointRequest {
                        touchpoint: Some(touchpoint(code)),
                    },
                ))
                .await
                .unwrap()
        });
        futures_join_all(creating).await;
    }
    codes
}

/// Awaits every future, concurrently.
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await);
    }
    outputs
}

/// A well-mixed index below `n` for `a` and `b`.
fn scatter(a: usize, b: usize, n: usize) -> usize {
    let mut x = (a as u64) << 32 | b as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) % n as u64) as usize
}

/// The scope of the fixture's year: 2025-06-02 to 2026-06-02.
fn a_year() -> pb::AnalysisScope {
    pb::AnalysisScope {
        start_time: Some(at(-365 * 86_400 - 9 * 3600)),
        end_time: Some(at(86_400 - 9 * 3600)),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_manual_of_105_standards_with_the_longest_guidance_comes_in_pages_that_fit() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    for code in ["desk", "lab", "ward"] {
        app.touchpoints()
            .await
            .create_touchpoint(authed(
                key,
                pb::CreateTouchpointRequest {
                    touchpoint: Some(touchpoint(code)),
                },
            ))
            .await
            .unwrap();
    }
    // 20,000 characters of three bytes each: the documented limit, in
    // Korean.
    let guidance = "환자에게 먼저 인사한다"
        .chars()
        .cycle()
        .take(20_000)
        .collect::<String>();
    for n in 0..105 {
        let mut long = standard(&format!("s-{n:03}"), ["desk", "lab", "ward", ""][n % 4]);
        long.guidance = guidance.clone();
        app.create_standard(key, long).await;
    }

    let mut client = app.standards().await;
    let mut request = pb::GetServiceManualRequest::default();
    let mut seen = HashSet::new();
    let mut pages = 0;
    loop {
        let page = client
            .get_service_manual(authed(key, request.clone()))
            .await
            .expect("a page of the manual failed")
            .into_inner();
        pages += 1;
        let manual = page.service_manual.unwrap();
        let standards = manual.organisation_standards.iter().chain(
            manual
                .stages
                .iter()
                .flat_map(|s| &s.touchpoints)
                .flat_map(|t| &t.standards),
        );
        for standard in standards {
            assert!(
                seen.insert(standard.code.clone()),
                "{} twice",
                standard.code
            );
            assert!(manual.markdown.contains(&format!("(`{}`)", standard.code)));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        assert!(pages < 20, "the pages never end");
    }
    assert_eq!(seen.len(), 105);
    assert!(pages > 1, "105 standards of 60 KB came in one answer");

    // By stage, and a page of one touchpoint at a time.
    let page = client
        .get_service_manual(authed(
            key,
            pb::GetServiceManualRequest {
                stage: pb::Stage::Service.into(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let manual = page.service_manual.unwrap();
    assert!(
        manual
            .stages
            .iter()
            .all(|s| s.stage() == pb::Stage::Service)
    );
    assert!(!page.next_page_token.is_empty());
    let status = client
        .get_service_manual(authed(
            key,
            pb::GetServiceManualRequest {
                page_size: -1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn a_mot_cycle_and_a_trend_over_2000_touchpoints_for_a_year_fit_or_are_refused_up_front() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    let codes = many_touchpoints(&app, key, 2000).await;
    // 600 journeys of 20 steps each through the touchpoints in a scrambled
    // order, spread over the year: some 11,000 distinct pairs.
    let mut batches = Vec::new();
    for journey in 0..600usize {
        let batch = (0..20usize)
            .map(|step| {
                let code = &codes[scatter(journey, step, codes.len())];
                pb::Encounter {
                    journey_id: format!("j-{journey}"),
                    occur_time: Some(at(-(journey as i64) * 50_000 + step as i64 * 600)),
                    ..encounter(code, "his", &format!("{journey}-{step}"))
                }
            })
            .collect();
        batches.push(batch);
    }
    let stored = app.ingest(key, batches).await.unwrap();
    assert_eq!(stored.accepted, 12_000);

    let mut analyses = app.analyses().await;
    let cycle = analyses
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: Some(a_year()),
                max_variants: 100,
                ..Default::default()
            },
        ))
        .await
        .expect("the MOT cycle failed")
        .into_inner();
    let total = cycle.pairs.len() as i64 + cycle.pairs_omitted;
    assert!(total > 10_000, "{total} pairs");
    assert_eq!(cycle.pairs.len(), 5000, "the default cap");
    assert_eq!(cycle.variants.len(), 100);
    assert!(cycle.pairs.windows(2).all(|w| w[0].count >= w[1].count));
    // Every pair, as far as they fit; and a frequency filter.
    let all = analyses
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: Some(a_year()),
                max_pairs: 20_000,
                ..Default::default()
            },
        ))
        .await
        .expect("the MOT cycle of every pair failed")
        .into_inner();
    assert_eq!(all.pairs.len() as i64 + all.pairs_omitted, total);
    assert_eq!(all.pairs_omitted, 0, "{} pairs fit", all.pairs.len());
    let frequent = analyses
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: Some(a_year()),
                min_pair_count: 2,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(frequent.pairs.iter().all(|p| p.count >= 2));
    assert_eq!(frequent.transitions, all.transitions);

    // Per touchpoint by day for a year: 366 x 2,001 points, refused before
    // the work, saying what to narrow; by week it fits.
    let trend = |granularity: pb::Granularity| pb::GetTrendRequest {
        scope: Some(a_year()),
        figure: pb::TrendFigure::Encounters.into(),
        granularity: granularity.into(),
        per_touchpoint: true,
    };
    let status = analyses
        .get_trend(authed(key, trend(pb::Granularity::Day)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["per_touchpoint"]);
    assert!(status.message().contains("by week or month"), "{status:?}");
    let weekly = analyses
        .get_trend(authed(key, trend(pb::Granularity::Week)))
        .await
        .expect("the weekly trend per touchpoint failed")
        .into_inner();
    // The total and each touchpoint met in the year.
    assert!(weekly.series.len() > 1900, "{}", weekly.series.len());
}

#[tokio::test]
async fn under_a_small_message_limit_pages_and_cycles_shrink_to_fit() {
    let app = spawn_app_with(|s| s.max_message_bytes = 64 * 1024).await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    let codes = many_touchpoints(&app, key, 60).await;
    // Encounters of some 5 KB each: 500 do not fit in 64 KiB.
    let batch = (0..500usize)
        .map(|n| pb::Encounter {
            journey_id: format!("j-{}", n / 10),
            occur_time: Some(at(n as i64 * 60)),
            comment: "x".repeat(4000),
            ..encounter(&codes[(n * 7) % codes.len()], "his", &n.to_string())
        })
        .collect::<Vec<_>>();
    for chunk in batch.chunks(10) {
        app.ingest(key, vec![chunk.to_vec()]).await.unwrap();
    }
    // And 3,000 small ones in journeys of 30 steps: some 2,000 pairs.
    let small = (0..3000usize)
        .map(|n| pb::Encounter {
            journey_id: format!("walk-{}", n / 30),
            occur_time: Some(at(n as i64 * 10)),
            ..encounter(
                &codes[scatter(n / 30, n % 30, codes.len())],
                "his",
                &format!("w{n}"),
            )
        })
        .collect::<Vec<_>>();
    for chunk in small.chunks(100) {
        app.ingest(key, vec![chunk.to_vec()]).await.unwrap();
    }

    let mut encounters = app.encounters().await;
    let mut request = pb::ListEncountersRequest {
        page_size: 500,
        ..Default::default()
    };
    let mut listed = 0;
    loop {
        let page = encounters
            .list_encounters(authed(key, request.clone()))
            .await
            .expect("a page over the limit")
            .into_inner();
        assert!(page.encounters.len() < 500);
        listed += page.encounters.len();
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(listed, 3500);

    let cycle = app
        .analyses()
        .await
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: Some(pb::AnalysisScope {
                    start_time: Some(at(-3600)),
                    end_time: Some(at(86_400)),
                    ..Default::default()
                }),
                max_pairs: 20_000,
                ..Default::default()
            },
        ))
        .await
        .expect("the MOT cycle over the limit")
        .into_inner();
    assert!(cycle.pairs_omitted > 0, "{} pairs", cycle.pairs.len());
    assert!(!cycle.pairs.is_empty());

    // A journey of 500 such encounters: the first ones, as many as fit.
    let journey = app
        .journeys()
        .await
        .get_journey(authed(
            key,
            pb::GetJourneyRequest {
                journey_id: "j-0".into(),
            },
        ))
        .await
        .expect("the journey over the limit")
        .into_inner()
        .journey
        .unwrap();
    assert_eq!(journey.encounter_count, 10);
    assert!(!journey.encounters.is_empty() && journey.encounters.len() <= 10);
}

#[tokio::test]
async fn an_answer_no_bound_foresees_is_refused_plainly_not_as_out_of_range() {
    let app = spawn_app_with(|s| s.max_message_bytes = 4096).await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    let codes = many_touchpoints(&app, key, 40).await;
    let batch = codes
        .iter()
        .enumerate()
        .map(|(n, code)| pb::Encounter {
            occur_time: Some(at(n as i64)),
            satisfaction: Some(4),
            ..encounter(code, "his", &n.to_string())
        })
        .collect();
    app.ingest(key, vec![batch]).await.unwrap();

    // Forty scorecard rows do not fit in 4 KiB.
    let status = app
        .analyses()
        .await
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::ResourceExhausted, "ANSWER_TOO_LARGE");
    assert!(
        status.message().contains("limit of 4096 bytes"),
        "{status:?}"
    );
    assert!(status.message().contains("ask for less"), "{status:?}");
}
