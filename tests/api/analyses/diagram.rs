//! The MOT cycle as a picture: SVG that parses and holds what was kept,
//! DOT that parses, Mermaid, and pruning that keeps what it says.

use std::collections::BTreeSet;

use prost_types::Timestamp;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Org, TestApp, authed, encounter, keyed, minutes_ago, spawn_app, violated_fields,
};

/// A clinic of booking (10), reception (20), consult (30) and payment (40),
/// the first three key, with 12 journeys: 8 in designed order, 3 that see
/// the consult before reception, and 1 that goes straight to payment.
async fn clinic(app: &TestApp) -> Org {
    let org = app.create_org("Clinic").await;
    for (code, position, key) in [
        ("booking", 10, true),
        ("reception", 20, true),
        ("consult", 30, true),
        ("payment", 40, false),
    ] {
        app.create_touchpoint(
            &org.admin_key,
            pb::Touchpoint {
                display_name: format!("The \"{code}\" <desk> & co"),
                ..keyed(code, position, key)
            },
        )
        .await;
    }
    let start = minutes_ago(600);
    let mut journey = 0;
    for (times, path) in [
        (8, &["booking", "reception", "consult", "payment"][..]),
        (3, &["booking", "consult", "reception", "payment"][..]),
        (1, &["booking", "payment"][..]),
    ] {
        for _ in 0..times {
            journey += 1;
            for (n, code) in path.iter().enumerate() {
                app.recorded(
                    &org.admin_key,
                    pb::Encounter {
                        journey_id: format!("j{journey}"),
                        occur_time: Some(Timestamp {
                            seconds: start.seconds + journey * 1000 + 60 * n as i64,
                            nanos: 0,
                        }),
                        ..encounter(code, "emr", &format!("j{journey}-{n}"))
                    },
                )
                .await;
            }
        }
    }
    org
}

fn request(format: pb::DiagramFormat) -> pb::GetMotCycleDiagramRequest {
    pb::GetMotCycleDiagramRequest {
        scope: Some(pb::AnalysisScope::default()),
        format: format.into(),
        min_pair_share: Some(0.0),
        ..Default::default()
    }
}

async fn draw(
    app: &TestApp,
    key: &str,
    request: pb::GetMotCycleDiagramRequest,
) -> pb::GetMotCycleDiagramResponse {
    app.analyses()
        .await
        .get_mot_cycle_diagram(authed(key, request))
        .await
        .expect("get_mot_cycle_diagram failed")
        .into_inner()
}

/// The words of an element's class.
fn classes<'a>(node: &roxmltree::Node<'a, 'a>) -> BTreeSet<&'a str> {
    node.attribute("class")
        .map(|c| c.split_whitespace().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_svg_parses_and_holds_one_node_per_touchpoint_and_one_edge_per_pair() {
    let app = spawn_app().await;
    let org = clinic(&app).await;
    let drawn = draw(&app, &org.admin_key, request(pb::DiagramFormat::Svg)).await;
    assert_eq!(drawn.media_type, "image/svg+xml");
    assert!(!drawn.no_data);
    // Pairs: b→r 8, r→c 8, c→p 8, b→c 3, c→r 3, r→p 3, b→p 1.
    assert_eq!((drawn.touchpoints_drawn, drawn.pairs_drawn), (4, 7));
    assert_eq!(drawn.pairs_omitted, 0);

    let svg = roxmltree::Document::parse(&drawn.content).expect("the SVG is not XML");
    let groups: Vec<_> = svg.descendants().filter(|n| n.has_tag_name("g")).collect();
    let touchpoints: BTreeSet<&str> = groups
        .iter()
        .filter(|g| classes(g).contains("touchpoint"))
        .filter_map(|g| g.attribute("data-code"))
        .collect();
    assert_eq!(
        touchpoints,
        BTreeSet::from(["booking", "reception", "consult", "payment"])
    );
    let keys = groups
        .iter()
        .filter(|g| classes(g).contains("touchpoint") && classes(g).contains("key"))
        .count();
    assert_eq!(keys, 3);
    let nodes = groups
        .iter()
        .filter(|g| classes(g).contains("node"))
        .count();
    assert_eq!(nodes, 4 + 2, "the touchpoints, start and end");
    let pairs: Vec<_> = groups
        .iter()
        .filter(|g| {
            let c = classes(g);
            c.contains("edge") && !c.contains("start") && !c.contains("end")
        })
        .collect();
    assert_eq!(pairs.len(), 7);
    let against: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|g| classes(g).contains("against"))
        .map(|g| {
            (
                g.attribute("data-from").unwrap(),
                g.attribute("data-to").unwrap(),
            )
        })
        .collect();
    assert_eq!(against, [("consult", "reception")]);
    // Journeys start at booking and end at payment.
    let terminal_edges = groups
        .iter()
        .filter(|g| {
            let c = classes(g);
            c.contains("edge") && (c.contains("start") || c.contains("end"))
        })
        .count();
    assert_eq!(terminal_edges, 2);
    assert!(drawn.content.contains("&lt;desk&gt;"), "labels are escaped");
}

#[tokio::test]
async fn the_dot_parses_and_pruning_keeps_what_it_says() {
    let app = spawn_app().await;
    let org = clinic(&app).await;
    let key = org.admin_key.as_str();
    let all = draw(&app, key, request(pb::DiagramFormat::Dot)).await;
    assert_eq!(all.media_type, "text/vnd.graphviz");
    layout::gv::DotParser::new(&all.content)
        .process()
        .expect("the DOT does not parse");
    let edges = |dot: &str| dot.lines().filter(|l| l.contains(" -> ")).count();
    assert_eq!(edges(&all.content), 7 + 2);
    assert!(all.content.contains("style=dashed"));

    // 30 transitions: at a share of 0.2 (6 or more) only the three pairs
    // of 8 stay; at 0.05 (1.5 or more) the pair of one goes.
    let mut pruned = request(pb::DiagramFormat::Dot);
    pruned.min_pair_share = Some(0.2);
    let pruned = draw(&app, key, pruned).await;
    assert_eq!((pruned.touchpoints_drawn, pruned.pairs_drawn), (4, 3));
    assert_eq!(pruned.pairs_omitted, 4);
    assert_eq!(edges(&pruned.content), 3 + 2);
    let mut default_share = request(pb::DiagramFormat::Dot);
    default_share.min_pair_share = Some(0.05);
    assert_eq!(draw(&app, key, default_share).await.pairs_drawn, 6);
    // Two touchpoints: the busiest two, and the pairs between them.
    let mut capped = request(pb::DiagramFormat::Dot);
    capped.max_touchpoints = 2;
    let capped = draw(&app, key, capped).await;
    assert_eq!(capped.touchpoints_drawn, 2);
    assert!(capped.pairs_drawn <= 2, "{capped:?}");

    let mermaid = draw(&app, key, request(pb::DiagramFormat::Mermaid)).await;
    assert_eq!(mermaid.media_type, "text/vnd.mermaid");
    assert!(
        mermaid.content.starts_with("flowchart"),
        "{}",
        mermaid.content
    );
    let mut by_time = request(pb::DiagramFormat::Mermaid);
    by_time.weight = pb::DiagramWeight::MedianTime.into();
    assert!(draw(&app, key, by_time).await.content.contains("1m"));
}

#[tokio::test]
async fn a_diagram_request_is_checked_field_by_field() {
    let app = spawn_app().await;
    let key = app.create_org("Empty").await.admin_key;
    let refused = app
        .analyses()
        .await
        .get_mot_cycle_diagram(authed(
            &key,
            pb::GetMotCycleDiagramRequest {
                scope: Some(pb::AnalysisScope::default()),
                format: 0,
                weight: 9,
                min_pair_share: Some(1.5),
                max_touchpoints: -1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refused),
        ["format", "weight", "min_pair_share", "max_touchpoints"]
    );
    // An empty scope draws start and end only.
    let empty = draw(&app, &key, request(pb::DiagramFormat::Svg)).await;
    assert!(empty.no_data);
    assert_eq!(empty.touchpoints_drawn, 0);
    roxmltree::Document::parse(&empty.content).expect("the SVG is not XML");
}
