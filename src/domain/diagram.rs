//! A MOT cycle's process map (touchpoints and the directly-follows pairs
//! between them) as Graphviz DOT, as a Mermaid flowchart, and as SVG laid out
//! in-process by `layout-rs`, so that no Graphviz has to be installed.
//!
//! The three formats draw the same picture: a small "start" circle with an
//! edge to every touchpoint where journeys start, an "end" circle with an edge
//! from every touchpoint where they end (both labelled with the journeys), key
//! touchpoints emphasised, and pairs that run against the designed order red
//! and dashed. Edges are labelled and thickened by the chosen [`Weight`].
//!
//! Edges whose ends are not among the nodes are left out (pruning a map to a
//! minimum share can leave such edges behind), and a code given twice keeps
//! its first node.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

#[derive(Debug, Clone, PartialEq)]
pub struct Diagram {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// ASCII letters, digits, '.', '_' and '-', 1 to 64 of them.
    pub code: String,
    /// Any text, Korean names included; quotes, markup characters and
    /// newlines are escaped per format.
    pub label: String,
    /// A key touchpoint of the designed cycle.
    pub key: bool,
    /// Journeys that start here.
    pub starts: i64,
    /// Journeys that end here.
    pub ends: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Equal to `to` when a touchpoint was repeated.
    pub from: String,
    pub to: String,
    pub count: i64,
    pub median_seconds: Option<f64>,
    /// The pair runs against the designed order.
    pub against_design: bool,
}

/// What edge labels show and edge thickness follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Weight {
    Count,
    MedianTime,
}

/// All three formats run top to bottom: layout-rs ranks that way natively
/// (left to right is a transposition, which the bends, loops and labels
/// drawn here do not allow for), and process maps of 10 to 60 touchpoints
/// are deep rather than wide.
const RANKDIR: &str = "TB";

const KEY_FILL: &str = "#fde68a";
const TERMINAL_FILL: &str = "#e5e7eb";
const AGAINST_COLOUR: &str = "#d62728";
const EDGE_COLOUR: &str = "#555555";
const NODE_STROKE: &str = "#444444";

/// Above this estimate (see `Route::crossing`) layout-rs's crossing
/// reduction is skipped, leaving more crossings: in release builds on 2
/// cores, random maps under it took at most 60 ms with it, and maps up to
/// three times it up to a third of a second (60 touchpoints and 300 random
/// pairs took 98 s).
const MAX_CROSSING_WORK: usize = 100_000;
/// Above this many layout nodes (see `Route::work`) `svg` refuses, as
/// layout-rs's placement grows with about their cube: without crossing
/// reduction, in release builds on 2 cores, 1,070 took 0.25 s, 1,700 0.8 s,
/// 1,950 1.3 s, 2,600 2.5 s, 2,950 4.2 s and 4,700 15 s; a 150-touchpoint,
/// 1,500-edge map has 40,000 to 63,000. A chain of 40 touchpoints with 61
/// pairs back up it and journeys ending at each comes to 1,700.
const MAX_WORK: usize = 2_000;

/// Pixels between edges that join the same two nodes, at their middle.
const BEND: f64 = 16.0;
/// How far a loop reaches out of its node, beyond half the node's height.
const LOOP_REACH: f64 = 14.0;

const MIN_PEN: f64 = 1.0;
const MAX_PEN: f64 = 5.0;

/// Graphviz DOT text; ids of touchpoints are their codes prefixed with
/// `tp_`, so the unprefixed `start` and `end` cannot collide with them.
pub fn dot(diagram: &Diagram, weight: Weight) -> String {
    let plan = Plan::new(diagram, weight);
    let mut out = String::new();
    out.push_str("digraph mot {\n");
    let _ = writeln!(out, "  rankdir={RANKDIR};");
    out.push_str("  node [shape=box, style=\"rounded,filled\", fillcolor=\"white\", fontname=\"sans-serif\"];\n");
    out.push_str("  edge [fontname=\"sans-serif\", fontsize=10];\n");
    let _ = writeln!(
        out,
        "  \"start\" [shape=circle, label=\"start\", style=filled, fillcolor=\"{TERMINAL_FILL}\", fontsize=10, width=0.5, fixedsize=true];"
    );
    let _ = writeln!(
        out,
        "  \"end\" [shape=circle, label=\"end\", style=filled, fillcolor=\"{TERMINAL_FILL}\", fontsize=10, width=0.5, fixedsize=true];"
    );
    for node in &plan.nodes {
        let id = dot_quote(&format!("tp_{}", node.code));
        let label = dot_quote(&node.label);
        if node.key {
            let _ = writeln!(
                out,
                "  {id} [label={label}, style=\"rounded,filled,bold\", penwidth=3, fillcolor=\"{KEY_FILL}\"];"
            );
        } else {
            let _ = writeln!(out, "  {id} [label={label}];");
        }
    }
    for edge in &plan.edges {
        let from = match edge.from {
            End::Terminal => "\"start\"".to_owned(),
            End::Touchpoint(i) => dot_quote(&format!("tp_{}", plan.code(i))),
        };
        let to = match edge.to {
            End::Terminal => "\"end\"".to_owned(),
            End::Touchpoint(i) => dot_quote(&format!("tp_{}", plan.code(i))),
        };
        let label = dot_quote(&edge.label);
        let pen = edge.pen;
        if edge.against {
            let _ = writeln!(
                out,
                "  {from} -> {to} [label={label}, penwidth={pen:.1}, color=\"{AGAINST_COLOUR}\", fontcolor=\"{AGAINST_COLOUR}\", style=dashed];"
            );
        } else {
            let _ = writeln!(out, "  {from} -> {to} [label={label}, penwidth={pen:.1}];");
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart text. Touchpoints are `n0`, `n1`, ... in the order
/// given and the terminals `nstart` and `nend` (Mermaid reserves a bare
/// `end`); every link gets a `linkStyle` by its position, which is how
/// Mermaid addresses links.
pub fn mermaid(diagram: &Diagram, weight: Weight) -> String {
    let plan = Plan::new(diagram, weight);
    let mut out = String::new();
    let _ = writeln!(out, "flowchart {RANKDIR}");
    out.push_str("  nstart((\"start\"))\n");
    for (i, node) in plan.nodes.iter().enumerate() {
        let _ = writeln!(out, "  n{i}[\"{}\"]", mermaid_text(&node.label));
    }
    out.push_str("  nend((\"end\"))\n");
    for edge in &plan.edges {
        let from = match edge.from {
            End::Terminal => "nstart".to_owned(),
            End::Touchpoint(i) => format!("n{i}"),
        };
        let to = match edge.to {
            End::Terminal => "nend".to_owned(),
            End::Touchpoint(i) => format!("n{i}"),
        };
        let arrow = if edge.against { "-.->" } else { "-->" };
        // Edge labels are numbers and durations, plain text between pipes.
        let _ = writeln!(out, "  {from} {arrow}|{}| {to}", mermaid_text(&edge.label));
    }
    let _ = writeln!(
        out,
        "  classDef key fill:{KEY_FILL},stroke:{NODE_STROKE},stroke-width:3px,font-weight:bold"
    );
    let _ = writeln!(
        out,
        "  classDef terminal fill:{TERMINAL_FILL},stroke:#6b7280"
    );
    out.push_str("  class nstart,nend terminal\n");
    let keys: Vec<String> = plan
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.key)
        .map(|(i, _)| format!("n{i}"))
        .collect();
    if !keys.is_empty() {
        let _ = writeln!(out, "  class {} key", keys.join(","));
    }
    for (i, edge) in plan.edges.iter().enumerate() {
        let pen = edge.pen;
        if edge.against {
            let _ = writeln!(
                out,
                "  linkStyle {i} stroke:{AGAINST_COLOUR},stroke-width:{pen:.1}px,stroke-dasharray:6 4"
            );
        } else {
            let _ = writeln!(out, "  linkStyle {i} stroke-width:{pen:.1}px");
        }
    }
    out
}

/// SVG laid out by layout-rs.
///
/// How to find things in it (a test parses it as XML and counts `g`
/// elements by the whitespace-separated words of their `class`):
/// - every node is one `<g>` whose class has the word `node`: a touchpoint
///   is `class="node touchpoint"` (`"node touchpoint key"` for a key one)
///   with `data-code` holding its code, the terminals are
///   `class="node start"` and `class="node end"`; the group holds the shape
///   (`rect` or `ellipse`), a `title` and the label's `text`;
/// - every edge is one `<g>` whose class has the word `edge`: between
///   touchpoints `class="edge"` (`"edge against"` against the design) with
///   `data-from` and `data-to` holding the codes (equal for a repeated
///   touchpoint), from the start `class="edge start"` with `data-to`, to the
///   end `class="edge end"` with `data-from`; the group holds one `path`
///   and the edge's label `text`.
///
/// The groups holding them all, `class="edges"` and `class="nodes"`, have
/// neither word. So a map with N touchpoints, E edges whose ends are both
/// among them, S touchpoints with starts and F with ends has N + 2 node
/// groups and E + S + F edge groups. Loops (a touchpoint repeated) are drawn
/// here, on the node's right, not by layout-rs.
///
/// Takes up to a second or so on 2 cores, so async callers should run it on
/// a blocking thread. Errs at once on maps too big for layout-rs to lay out
/// in reasonable time (see `MAX_WORK`: 40 touchpoints and 100 pairs fit
/// unless the pairs mostly run far back up a long chain; 60 and 300 often do
/// not), and errs if layout-rs panics: it is third-party code full of
/// asserts, so a panic costs one picture, not the worker (its message still
/// reaches the panic hook, i.e. stderr).
pub fn svg(diagram: &Diagram, weight: Weight) -> Result<String, SvgError> {
    let plan = Plan::new(diagram, weight);
    let route = Route::new(&plan);
    if route.work > MAX_WORK {
        return Err(SvgError::TooBig(format!(
            "the map is too big to lay out in the server ({} touchpoints and {} edges make {} layout nodes, over {MAX_WORK}); \
             raise min_pair_share, lower max_touchpoints, or ask for DOT",
            plan.nodes.len(),
            plan.edges.len(),
            route.work
        )));
    }
    let optimise = route.crossing <= MAX_CROSSING_WORK;
    let canvas = guarded(|| lay_out(&plan, &route, optimise))
        .map_err(|message| SvgError::Failed(format!("layout-rs failed: {message}")))?;
    Ok(canvas.finish(&plan, &route))
}

/// Why an SVG was not drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvgError {
    /// The map has more to lay out than the server does in about a second:
    /// the caller's to prune.
    TooBig(String),
    /// layout-rs panicked.
    Failed(String),
}

impl std::fmt::Display for SvgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SvgError::TooBig(message) | SvgError::Failed(message) => f.write_str(message),
        }
    }
}

/// Runs `f`, turning a panic into its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// One end of a drawn edge: the terminal is the start circle as a source and
/// the end circle as a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Terminal,
    Touchpoint(usize),
}

#[derive(Debug)]
struct PlanNode {
    code: String,
    /// Cleaned for every format; the code when the name is blank.
    label: String,
    key: bool,
}

#[derive(Debug)]
struct PlanEdge {
    from: End,
    to: End,
    label: String,
    /// What the thickness follows; journeys for start and end edges.
    weight: f64,
    pen: f64,
    against: bool,
}

/// What all three formats draw, decided once so that they agree.
#[derive(Debug)]
struct Plan {
    nodes: Vec<PlanNode>,
    /// Touchpoint edges in input order, then start edges, then end edges.
    edges: Vec<PlanEdge>,
}

impl Plan {
    fn code(&self, i: usize) -> &str {
        self.nodes.get(i).map_or("", |node| node.code.as_str())
    }

    fn new(diagram: &Diagram, weight: Weight) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut nodes = Vec::new();
        let mut sources = Vec::new();
        for node in &diagram.nodes {
            if index.contains_key(node.code.as_str()) {
                continue;
            }
            index.insert(node.code.as_str(), nodes.len());
            let label = clean_text(&node.label);
            let label = if label.trim().is_empty() {
                clean_text(&node.code)
            } else {
                label
            };
            sources.push(node);
            nodes.push(PlanNode {
                code: node.code.clone(),
                label,
                key: node.key,
            });
        }

        // (from, to, label, weight, against)
        let mut raw: Vec<(End, End, String, f64, bool)> = Vec::new();
        for edge in &diagram.edges {
            let (Some(&from), Some(&to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            else {
                continue;
            };
            let (label, w) = match weight {
                Weight::Count => (thousands(edge.count), edge.count.max(0) as f64),
                Weight::MedianTime => match edge.median_seconds {
                    Some(s) if s.is_finite() => (duration(s), s.max(0.0)),
                    _ => ("?".to_owned(), 0.0),
                },
            };
            raw.push((
                End::Touchpoint(from),
                End::Touchpoint(to),
                label,
                w,
                edge.against_design,
            ));
        }
        // Journeys weigh start and end edges only when edges weigh counts:
        // a count cannot be set against a duration.
        let terminal_weight = |journeys: i64| match weight {
            Weight::Count => journeys as f64,
            Weight::MedianTime => 0.0,
        };
        for (i, node) in sources.iter().enumerate() {
            if node.starts > 0 {
                raw.push((
                    End::Terminal,
                    End::Touchpoint(i),
                    thousands(node.starts),
                    terminal_weight(node.starts),
                    false,
                ));
            }
        }
        for (i, node) in sources.iter().enumerate() {
            if node.ends > 0 {
                raw.push((
                    End::Touchpoint(i),
                    End::Terminal,
                    thousands(node.ends),
                    terminal_weight(node.ends),
                    false,
                ));
            }
        }

        let max = raw.iter().map(|r| r.3).fold(0.0_f64, f64::max);
        let mut edges = Vec::with_capacity(raw.len());
        for (from, to, label, weight, against) in raw {
            let pen = if max > 0.0 && weight > 0.0 {
                (MIN_PEN + (MAX_PEN - MIN_PEN) * (weight / max)).clamp(MIN_PEN, MAX_PEN)
            } else {
                MIN_PEN
            };
            edges.push(PlanEdge {
                from,
                to,
                label,
                weight,
                pen,
                against,
            });
        }
        Plan { nodes, edges }
    }
}

/// Control characters other than newlines would make the SVG ill-formed XML
/// and are invisible anyway; carriage returns become newlines.
fn clean_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.chars()
        .map(|c| {
            if c != '\n' && (c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The two largest units only: a label has to stay short on an edge.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".to_owned();
    }
    // `as` saturates, so absurd medians cannot overflow.
    let s = seconds.max(0.0).round() as u64;
    let (minute, hour, day) = (60, 3_600, 86_400);
    if s < minute {
        format!("{s}s")
    } else if s < hour {
        format!("{}m", s / minute)
    } else if s < day {
        let (h, m) = (s / hour, s % hour / minute);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h {m}m")
        }
    } else {
        let (d, h) = (s / day, s % day / hour);
        if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d {h}h")
        }
    }
}

fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// For inside Mermaid's double quotes, where `#name;` is its entity syntax
/// and markup would otherwise reach its HTML labels.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            '\u{FFFE}' | '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

// Geometry of the SVG, in pixels.
const NODE_FONT: f64 = 14.0;
const TERMINAL_FONT: f64 = 11.0;
const EDGE_FONT: usize = 12;
const LINE_HEIGHT: f64 = 1.25;
const BASELINE_DROP: f64 = 0.35;
const LABEL_GAP: f64 = 4.0;
const LABEL_COLOUR: &str = "#222222";
/// Keeps a label readable where an edge crosses it.
const LABEL_HALO: &str = " stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"";
const TERMINAL_SIZE: f64 = 44.0;
const MARGIN: f64 = 8.0;
const FONT_FAMILY: &str = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans KR', 'Malgun Gothic', 'Apple SD Gothic Neo', sans-serif";

/// Roughly how wide a character is in ems: CJK and Hangul take a full em,
/// Latin text about half, which layout-rs's own estimate (one em for every
/// character) overstates.
fn char_em(c: char) -> f64 {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD => 1.0,
        _ => 0.6,
    }
}

fn text_size(text: &str, font: f64) -> (f64, f64) {
    let lines: Vec<&str> = text.split('\n').collect();
    let widest = lines
        .iter()
        .map(|line| line.chars().map(char_em).sum::<f64>())
        .fold(0.0_f64, f64::max);
    (widest * font, lines.len() as f64 * font * LINE_HEIGHT)
}

/// A `<text>` with a line per line of `text`, anchored at `at` (`start`,
/// `middle` or `end`) and vertically centred on it.
fn text_svg(at: Point, anchor: &str, text: &str, font: f64, extra: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    // Baselines a third of an em below each line's middle, as Graphviz
    // does: renderers disagree on `dominant-baseline`.
    let first = at.y - (lines.len() as f64 - 1.0) * font * LINE_HEIGHT / 2.0 + font * BASELINE_DROP;
    let mut out = format!(
        "<text x=\"{:.1}\" y=\"{first:.1}\" font-size=\"{font}\" text-anchor=\"{anchor}\"{extra}>",
        at.x
    );
    for (i, line) in lines.iter().enumerate() {
        let y = first + i as f64 * font * LINE_HEIGHT;
        let _ = write!(
            out,
            "<tspan x=\"{:.1}\" y=\"{y:.1}\">{}</tspan>",
            at.x,
            xml_text(line)
        );
    }
    out.push_str("</text>");
    out
}

/// The point halfway along a layout-rs path, by segments: a joint when
/// their number is even, else the middle of the middle segment.
///
/// The path is a point and its exit control, then for each later point its
/// entry control and the point; after the first segment each exit control
/// is the mirror of the previous entry control (SVG's `S`).
fn halfway(path: &[(Point, Point)]) -> Option<Point> {
    let segments = path.len().checked_sub(1).filter(|&n| n > 0)?;
    let point = |j: usize| if j == 0 { path[0].0 } else { path[j].1 };
    let middle = segments / 2;
    if segments % 2 == 0 {
        return Some(point(middle));
    }
    let from = point(middle);
    let to = point(middle + 1);
    let exit = if middle == 0 {
        path[0].1
    } else {
        Point::new(
            2.0 * from.x - path[middle].0.x,
            2.0 * from.y - path[middle].0.y,
        )
    };
    let entry = path[middle + 1].0;
    Some(Point::new(
        (from.x + 3.0 * exit.x + 3.0 * entry.x + to.x) / 8.0,
        (from.y + 3.0 * exit.y + 3.0 * entry.y + to.y) / 8.0,
    ))
}

/// Tags handed to layout-rs as element and arrow "properties" so that the
/// canvas can tell whose shape or path a draw call is.
fn node_tag(i: usize) -> String {
    format!("n{i}")
}

fn edge_tag(i: usize) -> String {
    format!("e{i}")
}

fn parse_tag(properties: &Option<String>, prefix: char) -> Option<usize> {
    properties.as_deref()?.strip_prefix(prefix)?.parse().ok()
}

/// Layout nodes: 0 is the start circle, 1..=n the touchpoints, n+1 the end.
fn layout_index(end: End, is_source: bool, touchpoints: usize) -> usize {
    match end {
        End::Touchpoint(i) => i + 1,
        End::Terminal if is_source => 0,
        End::Terminal => touchpoints + 1,
    }
}

/// A rank for every layout node such that reversing the edges that go
/// against it breaks every cycle, heavy and as-designed edges first.
///
/// layout-rs breaks cycles itself, but with a reachability search per edge
/// that revisits nodes (exponential on dense maps) and by insertion order.
/// Handing it only edges that go down the ranks, added in rank order of
/// their sources, makes each of its searches start at a node with no
/// successors yet, and lets the main flow run downwards.
fn ranks(plan: &Plan, count: usize) -> Vec<usize> {
    let touchpoints = plan.nodes.len();
    let mut successors: Vec<Vec<(bool, f64, usize)>> = vec![Vec::new(); count];
    for edge in &plan.edges {
        let from = layout_index(edge.from, true, touchpoints);
        let to = layout_index(edge.to, false, touchpoints);
        if from != to {
            successors[from].push((edge.against, edge.weight, to));
        }
    }
    for list in &mut successors {
        // Visited last-pushed first: put the preferred successor at the end.
        list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)));
    }

    let mut visited = vec![false; count];
    let mut postorder = Vec::with_capacity(count);
    let mut roots: Vec<usize> = (0..count).collect();
    // The start first, the end last, touchpoints in the order given.
    roots.sort_by_key(|&n| (n != 0, n == touchpoints + 1, n));
    for root in roots {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            let list = &successors[node];
            if next < list.len() {
                top.1 += 1;
                let child = list[list.len() - 1 - next].2;
                if !visited[child] {
                    visited[child] = true;
                    stack.push((child, 0));
                }
            } else {
                postorder.push(node);
                stack.pop();
            }
        }
    }
    let mut rank = vec![0; count];
    for (position, &node) in postorder.iter().rev().enumerate() {
        rank[node] = position;
    }
    rank
}

/// How the edges go to layout-rs, decided before it runs.
#[derive(Debug)]
struct Route {
    /// (plan edge, upper layout node, lower layout node, reversed), in the
    /// order to add them.
    edges: Vec<(usize, usize, usize, bool)>,
    /// (plan edge, layout node) of the edges from a node to itself, which
    /// are drawn after layout: layout-rs routes them through a connector
    /// that its placement can put far from the node.
    loops: Vec<(usize, usize)>,
    /// By plan edge: how far to bend it sideways, in pixels. layout-rs draws
    /// two edges between the same nodes (one each way, mostly) over each
    /// other; bent apart they show as two.
    bends: Vec<f64>,
    /// Roughly how many nodes layout-rs will place, counting the connectors
    /// it puts wherever an edge crosses a rank: its placement takes time
    /// quadratic in these, its crossing reduction about cubic in a rank's.
    work: usize,
    /// Roughly what layout-rs's crossing reduction costs: per pair of
    /// adjacent ranks, the square of the upper one's width times the lower
    /// one's, widths counting connectors.
    crossing: usize,
}

impl Route {
    fn new(plan: &Plan) -> Self {
        let touchpoints = plan.nodes.len();
        let count = touchpoints + 2;
        let rank = ranks(plan, count);
        let mut edges = Vec::with_capacity(plan.edges.len());
        let mut loops = Vec::new();
        for (i, edge) in plan.edges.iter().enumerate() {
            let from = layout_index(edge.from, true, touchpoints);
            let to = layout_index(edge.to, false, touchpoints);
            if from == to {
                loops.push((i, from));
                continue;
            }
            let reversed = rank[from] > rank[to];
            let (top, bottom) = if reversed { (to, from) } else { (from, to) };
            edges.push((i, top, bottom, reversed));
        }
        edges.sort_by_key(|&(i, top, _, _)| (rank[top], i));

        let mut between: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        for &(i, top, bottom, _) in &edges {
            between.entry((top, bottom)).or_default().push(i);
        }
        let mut bends = vec![0.0; plan.edges.len()];
        for group in between.values().filter(|group| group.len() > 1) {
            let middle = (group.len() - 1) as f64 / 2.0;
            for (k, &i) in group.iter().enumerate() {
                if let Some(bend) = bends.get_mut(i) {
                    *bend = (k as f64 - middle) * BEND;
                }
            }
        }

        // layout-rs ranks by longest path, so an edge's span in ranks is
        // known here.
        let mut by_rank: Vec<usize> = (0..count).collect();
        by_rank.sort_by_key(|&n| rank[n]);
        let mut below: Vec<Vec<usize>> = vec![Vec::new(); count];
        for &(_, top, bottom, _) in &edges {
            below[top].push(bottom);
        }
        let mut level = vec![0_usize; count];
        for &n in &by_rank {
            for &m in &below[n] {
                level[m] = level[m].max(level[n] + 1);
            }
        }
        let mut work = count;
        let depth = level.iter().max().map_or(0, |&l| l + 1);
        let mut width = vec![0_usize; depth];
        for &l in &level {
            width[l] += 1;
        }
        for &(_, top, bottom, _) in &edges {
            if let Some(crossed) = width.get_mut(level[top] + 1..level[bottom]) {
                work += crossed.len();
                for w in crossed {
                    *w += 1;
                }
            }
        }
        let crossing = width
            .windows(2)
            .map(|w| w[0].saturating_mul(w[0]).saturating_mul(w[1]))
            .fold(0_usize, usize::saturating_add);
        Route {
            edges,
            loops,
            bends,
            work,
            crossing,
        }
    }
}

fn lay_out(plan: &Plan, route: &Route, optimise: bool) -> Canvas {
    let orientation = Orientation::TopToBottom;
    // As layout-rs's own DOT builder does: shapes get the crossing direction.
    let shape_orientation = orientation.flip();
    let mut graph = VisualGraph::new(orientation);
    // Its checks re-walk every path of the graph after each edge.
    graph.dag.set_validate(false);

    let touchpoints = plan.nodes.len();
    let count = touchpoints + 2;
    let mut handles = Vec::with_capacity(count);

    let terminal_look = StyleAttr::new(
        Color::fast("black"),
        1,
        Some(Color::fast("white")),
        0,
        TERMINAL_FONT as usize,
    );
    let terminal_size = Point::new(TERMINAL_SIZE, TERMINAL_SIZE);
    handles.push(graph.add_node(Element::create_with_properties(
        ShapeKind::new_circle("start"),
        terminal_look.clone(),
        shape_orientation,
        terminal_size,
        node_tag(0),
    )));
    for (i, node) in plan.nodes.iter().enumerate() {
        let (w, h) = text_size(&node.label, NODE_FONT);
        let size = Point::new((w + 24.0).max(60.0), h + 16.0);
        let look = StyleAttr::new(
            Color::fast("black"),
            1,
            Some(Color::fast("white")),
            6,
            NODE_FONT as usize,
        );
        handles.push(graph.add_node(Element::create_with_properties(
            ShapeKind::new_box(&node.label),
            look,
            shape_orientation,
            size,
            node_tag(i + 1),
        )));
    }
    handles.push(graph.add_node(Element::create_with_properties(
        ShapeKind::new_circle("end"),
        terminal_look,
        shape_orientation,
        terminal_size,
        node_tag(touchpoints + 1),
    )));

    for &(i, top, bottom, reversed) in &route.edges {
        let (Some(edge), Some(&top), Some(&bottom)) =
            (plan.edges.get(i), handles.get(top), handles.get(bottom))
        else {
            continue;
        };
        // Colours and widths come from the plan when the canvas draws.
        let look = StyleAttr::simple();
        let style = if edge.against {
            LineStyleKind::Dashed
        } else {
            LineStyleKind::Normal
        };
        let (start, end) = if reversed {
            (LineEndKind::Arrow, LineEndKind::None)
        } else {
            (LineEndKind::None, LineEndKind::Arrow)
        };
        // Labels are placed after layout, halfway along each edge: given to
        // layout-rs they become connectors that double every edge's length
        // in ranks.
        let arrow = Arrow::with_properties(start, end, style, "", &look, edge_tag(i), &None, &None);
        graph.add_edge(arrow, top, bottom);
    }

    let mut canvas = Canvas {
        keys: std::iter::once(false)
            .chain(plan.nodes.iter().map(|node| node.key))
            .chain(std::iter::once(false))
            .collect(),
        edge_labels: plan.edges.iter().map(|edge| edge.label.clone()).collect(),
        bends: route.bends.clone(),
        ..Canvas::default()
    };
    graph.do_it(false, !optimise, false, &mut canvas);
    canvas
}

/// A node's shape waiting for its label, which layout-rs draws next.
#[derive(Debug)]
struct OpenNode {
    index: usize,
    shape: String,
}

#[derive(Debug)]
struct DrawnEdge {
    index: usize,
    /// Where the label is anchored, near the edge's midpoint.
    label_at: Point,
    anchor: &'static str,
    path: String,
    dashed: bool,
    head: (bool, bool),
}

/// A `RenderBackend` that keeps layout-rs's draw calls apart by whose they
/// are, so the SVG can group each node and edge and escape every text.
#[derive(Debug, Default)]
struct Canvas {
    /// By layout node: whether it is a key touchpoint.
    keys: Vec<bool>,
    nodes: Vec<(usize, String)>,
    open: Option<OpenNode>,
    edges: Vec<DrawnEdge>,
    /// By plan edge: its label.
    edge_labels: Vec<String>,
    /// By layout node: its shape's top left corner and size.
    boxes: HashMap<usize, (Point, Point)>,
    /// By plan edge: see `Route::bends`.
    bends: Vec<f64>,
    min: Option<(f64, f64)>,
    max: Option<(f64, f64)>,
}

impl Canvas {
    fn grow(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        self.min = Some(self.min.map_or((x, y), |(a, b)| (a.min(x), b.min(y))));
        self.max = Some(self.max.map_or((x, y), |(a, b)| (a.max(x), b.max(y))));
    }

    fn close_open(&mut self) {
        if let Some(open) = self.open.take() {
            self.nodes.push((open.index, open.shape));
        }
    }

    fn text_element(&mut self, centre: Point, text: &str, font: f64, extra: &str) -> String {
        let (w, h) = text_size(text, font);
        self.grow(centre.x - w / 2.0, centre.y - h / 2.0);
        self.grow(centre.x + w / 2.0, centre.y + h / 2.0);
        text_svg(centre, "middle", text, font, extra)
    }

    fn finish(mut self, plan: &Plan, route: &Route) -> String {
        self.close_open();
        for &(index, node) in &route.loops {
            let dashed = plan.edges.get(index).is_some_and(|edge| edge.against);
            self.add_loop(index, node, dashed);
        }
        let (min, max) = match (self.min, self.max) {
            (Some(min), Some(max)) => (min, max),
            _ => ((0.0, 0.0), (0.0, 0.0)),
        };
        let (x0, y0) = (min.0 - MARGIN, min.1 - MARGIN);
        let (w, h) = (max.0 - min.0 + 2.0 * MARGIN, max.1 - min.1 + 2.0 * MARGIN);
        let touchpoints = plan.nodes.len();

        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"{x0:.1} {y0:.1} {w:.1} {h:.1}\" font-family=\"{FONT_FAMILY}\">"
        );
        out.push_str("<defs>\n");
        for (name, colour) in [
            ("mot-arrow", EDGE_COLOUR),
            ("mot-arrow-against", AGAINST_COLOUR),
        ] {
            let _ = writeln!(
                out,
                "<marker id=\"{name}-end\" markerWidth=\"10\" markerHeight=\"7\" refX=\"10\" refY=\"3.5\" orient=\"auto\" markerUnits=\"userSpaceOnUse\"><polygon points=\"0 0, 10 3.5, 0 7\" fill=\"{colour}\"/></marker>"
            );
            let _ = writeln!(
                out,
                "<marker id=\"{name}-start\" markerWidth=\"10\" markerHeight=\"7\" refX=\"0\" refY=\"3.5\" orient=\"auto\" markerUnits=\"userSpaceOnUse\"><polygon points=\"10 0, 10 7, 0 3.5\" fill=\"{colour}\"/></marker>"
            );
        }
        out.push_str("</defs>\n");

        let edges = std::mem::take(&mut self.edges);
        out.push_str("<g class=\"edges\">\n");
        for drawn in &edges {
            let Some(edge) = plan.edges.get(drawn.index) else {
                continue;
            };
            let mut class = String::from("edge");
            let mut data = String::new();
            match edge.from {
                End::Terminal => class.push_str(" start"),
                End::Touchpoint(i) => {
                    let _ = write!(data, " data-from=\"{}\"", xml_text(plan.code(i)));
                }
            }
            match edge.to {
                End::Terminal => class.push_str(" end"),
                End::Touchpoint(i) => {
                    let _ = write!(data, " data-to=\"{}\"", xml_text(plan.code(i)));
                }
            }
            if edge.against {
                class.push_str(" against");
            }
            let (colour, marker) = if edge.against {
                (AGAINST_COLOUR, "mot-arrow-against")
            } else {
                (EDGE_COLOUR, "mot-arrow")
            };
            let _ = write!(out, "<g class=\"{class}\"{data}>");
            let dash = if drawn.dashed {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            let start = if drawn.head.0 {
                format!(" marker-start=\"url(#{marker}-start)\"")
            } else {
                String::new()
            };
            let end = if drawn.head.1 {
                format!(" marker-end=\"url(#{marker}-end)\"")
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{:.1}\"{dash}{start}{end}/>",
                drawn.path, edge.pen
            );
            let fill = if edge.against {
                AGAINST_COLOUR
            } else {
                LABEL_COLOUR
            };
            let extra = format!(" class=\"label\" fill=\"{fill}\"{LABEL_HALO}");
            out.push_str(&text_svg(
                drawn.label_at,
                drawn.anchor,
                &edge.label,
                EDGE_FONT as f64,
                &extra,
            ));
            out.push_str("</g>\n");
        }
        out.push_str("</g>\n");

        out.push_str("<g class=\"nodes\">\n");
        let nodes = std::mem::take(&mut self.nodes);
        for (index, body) in nodes {
            let (attributes, title) = if index == 0 {
                ("class=\"node start\"".to_owned(), "start".to_owned())
            } else if index == touchpoints + 1 {
                ("class=\"node end\"".to_owned(), "end".to_owned())
            } else if let Some(node) = index.checked_sub(1).and_then(|i| plan.nodes.get(i)) {
                let key = if node.key { " key" } else { "" };
                (
                    format!(
                        "class=\"node touchpoint{key}\" data-code=\"{}\"",
                        xml_text(&node.code)
                    ),
                    format!("{} ({})", node.label, node.code),
                )
            } else {
                continue;
            };
            let _ = writeln!(
                out,
                "<g {attributes}><title>{}</title>{body}</g>",
                xml_text(&title)
            );
        }
        out.push_str("</g>\n</svg>\n");
        out
    }

    /// `path` is in layout-rs's form: a point and its exit control, then for
    /// each later point its entry control and the point.
    fn add_edge(
        &mut self,
        index: usize,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
    ) {
        // Bent sideways, ends kept on their nodes.
        let bend = self.bends.get(index).copied().unwrap_or(0.0);
        let last = path.len().saturating_sub(1);
        let shift = |p: Point| Point::new(p.x + bend, p.y);
        let path: Vec<(Point, Point)> = path
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| {
                (
                    if i == 0 { a } else { shift(a) },
                    if i == last { b } else { shift(b) },
                )
            })
            .collect();
        let mut d = String::new();
        for (i, (a, b)) in path.iter().enumerate() {
            self.grow(a.x, a.y);
            self.grow(b.x, b.y);
            match i {
                0 => {
                    let _ = write!(d, "M {:.1} {:.1} C {:.1} {:.1}", a.x, a.y, b.x, b.y);
                }
                1 => {
                    let _ = write!(d, ", {:.1} {:.1}, {:.1} {:.1}", a.x, a.y, b.x, b.y);
                }
                _ => {
                    let _ = write!(d, " S {:.1} {:.1}, {:.1} {:.1}", a.x, a.y, b.x, b.y);
                }
            }
        }
        let Some(middle) = halfway(&path) else {
            return;
        };
        let text = self.edge_labels.get(index).map_or("", String::as_str);
        let (w, h) = text_size(text, EDGE_FONT as f64);
        // Right of the edge, unless it is bent left.
        let (label_at, anchor, left) = if bend < 0.0 {
            (
                Point::new(middle.x - LABEL_GAP, middle.y),
                "end",
                middle.x - LABEL_GAP - w,
            )
        } else {
            (
                Point::new(middle.x + LABEL_GAP, middle.y),
                "start",
                middle.x + LABEL_GAP,
            )
        };
        self.grow(left, label_at.y - h / 2.0);
        self.grow(left + w, label_at.y + h / 2.0);
        self.edges.push(DrawnEdge {
            index,
            label_at,
            anchor,
            path: d,
            dashed,
            head,
        });
    }

    /// A loop out of the right side of the node and back in.
    fn add_loop(&mut self, index: usize, node: usize, dashed: bool) {
        let Some(&(corner, size)) = self.boxes.get(&node) else {
            return;
        };
        let right = corner.x + size.x;
        let middle = corner.y + size.y / 2.0;
        let from = Point::new(right, middle - size.y / 4.0);
        let to = Point::new(right, middle + size.y / 4.0);
        let reach = LOOP_REACH + size.y / 2.0;
        let path = [
            (from, Point::new(right + reach, from.y - size.y / 2.0)),
            (Point::new(right + reach, to.y + size.y / 2.0), to),
        ];
        self.add_edge(index, &path, dashed, (false, true));
    }

    /// Opens a node's group; shapes that are no node's come only from
    /// layout-rs's debug mode and are dropped.
    fn shape(&mut self, properties: &Option<String>, svg: String) {
        self.close_open();
        if let Some(index) = parse_tag(properties, 'n') {
            self.open = Some(OpenNode { index, shape: svg });
        }
    }

    fn is_key(&self, properties: &Option<String>) -> bool {
        parse_tag(properties, 'n')
            .and_then(|i| self.keys.get(i))
            .copied()
            .unwrap_or(false)
    }
}

impl RenderBackend for Canvas {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        self.grow(xy.x, xy.y);
        self.grow(xy.x + size.x, xy.y + size.y);
        if let Some(node) = parse_tag(&properties, 'n') {
            self.boxes.insert(node, (xy, size));
        }
        let (fill, stroke_width) = if self.is_key(&properties) {
            (KEY_FILL, 3)
        } else {
            ("white", 1)
        };
        let svg = format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{}\" fill=\"{fill}\" stroke=\"{NODE_STROKE}\" stroke-width=\"{stroke_width}\"/>",
            xy.x, xy.y, size.x, size.y, look.rounded
        );
        self.shape(&properties, svg);
    }

    fn draw_line(
        &mut self,
        _start: Point,
        _stop: Point,
        _look: &StyleAttr,
        _properties: Option<String>,
    ) {
        // Only layout-rs's debug mode draws bare lines.
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        _look: &StyleAttr,
        properties: Option<String>,
    ) {
        let corner = Point::new(xy.x - size.x / 2.0, xy.y - size.y / 2.0);
        self.grow(corner.x, corner.y);
        self.grow(corner.x + size.x, corner.y + size.y);
        if let Some(node) = parse_tag(&properties, 'n') {
            self.boxes.insert(node, (corner, size));
        }
        let svg = format!(
            "<ellipse cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"{TERMINAL_FILL}\" stroke=\"#6b7280\" stroke-width=\"1\"/>",
            xy.x,
            xy.y,
            size.x / 2.0,
            size.y / 2.0
        );
        self.shape(&properties, svg);
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        // Edges reach layout-rs without text, so every text is a node's.
        if let Some(mut open) = self.open.take() {
            let key = self.keys.get(open.index).copied().unwrap_or(false);
            let extra = if key { " font-weight=\"bold\"" } else { "" };
            let element = self.text_element(xy, text, look.font_size as f64, extra);
            open.shape.push_str(&element);
            self.nodes.push((open.index, open.shape));
        }
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        self.close_open();
        if let Some(index) = parse_tag(&properties, 'e') {
            self.add_edge(index, path, dashed, head);
        }
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(code: &str, label: &str, key: bool, starts: i64, ends: i64) -> Node {
        Node {
            code: code.to_owned(),
            label: label.to_owned(),
            key,
            starts,
            ends,
        }
    }

    fn edge(
        from: &str,
        to: &str,
        count: i64,
        median_seconds: Option<f64>,
        against_design: bool,
    ) -> Edge {
        Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            count,
            median_seconds,
            against_design,
        }
    }

    /// Touchpoints coded "start" and "end" beside the terminals, a loop, an
    /// edge against the design, a dangling edge and a repeated code.
    fn sample() -> Diagram {
        Diagram {
            nodes: vec![
                node("start", "접수 \"창구\"", true, 900, 0),
                node("end", "수납 <&> \\ 결제", false, 0, 700),
                node("T1", "진료\n예약", false, 300, 0),
                node("T2", "대기 #1 `x`", false, 0, 500),
                node("T1", "duplicate", true, 1, 1),
            ],
            edges: vec![
                edge("start", "T2", 1_204, Some(45.0), false),
                edge("T1", "T2", 300, Some(93_600.0), false),
                edge("T2", "end", 700, Some(11_100.0), false),
                edge("T2", "T2", 80, None, false),
                edge("end", "start", 10, Some(750.0), true),
                edge("T2", "gone", 5, Some(1.0), false),
            ],
        }
    }

    fn occurrences(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn durations_keep_the_two_largest_units() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(45.4), "45s");
        assert_eq!(duration(59.6), "1m");
        assert_eq!(duration(750.0), "12m");
        assert_eq!(duration(3_600.0), "1h");
        assert_eq!(duration(11_100.0), "3h 5m");
        assert_eq!(duration(86_400.0 * 2.0 + 4.0 * 3_600.0 + 59.0), "2d 4h");
        assert_eq!(duration(86_400.0 * 30.0), "30d");
        assert_eq!(duration(-5.0), "0s");
        assert_eq!(duration(f64::NAN), "?");
        assert_eq!(duration(f64::INFINITY), "?");
        assert!(
            duration(1e300).starts_with("213503982334601d"),
            "{}",
            duration(1e300)
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_204), "1,204");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_000), "-1,000");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn dot_quotes_ids_and_labels_and_keeps_terminals_apart() {
        let text = dot(&sample(), Weight::Count);
        assert!(text.starts_with("digraph mot {\n"));
        assert!(text.ends_with("}\n"));
        assert!(
            text.contains("\"tp_start\" [label=\"접수 \\\"창구\\\"\""),
            "{text}"
        );
        assert!(
            text.contains("\"tp_end\" [label=\"수납 <&> \\\\ 결제\"]"),
            "{text}"
        );
        assert!(text.contains("[label=\"진료\\n예약\"]"), "{text}");
        assert!(
            text.contains("\"start\" -> \"tp_start\" [label=\"900\""),
            "{text}"
        );
        assert!(
            text.contains("\"tp_end\" -> \"end\" [label=\"700\""),
            "{text}"
        );
        assert!(
            text.contains("\"tp_T2\" -> \"tp_T2\" [label=\"80\""),
            "{text}"
        );
        let against = text
            .lines()
            .find(|line| line.contains("\"tp_end\" -> \"tp_start\""))
            .unwrap_or_default();
        assert!(
            against.contains("style=dashed") && against.contains(AGAINST_COLOUR),
            "{against}"
        );
        // The heaviest edge is 5 wide and the lightest 1.
        assert!(text.contains("[label=\"1,204\", penwidth=5.0]"), "{text}");
        assert!(text.contains("[label=\"10\", penwidth=1.0"), "{text}");
        assert!(
            !text.contains("gone") && !text.contains("duplicate"),
            "{text}"
        );
        // 5 edges, 2 starts, 2 ends.
        assert_eq!(occurrences(&text, " -> "), 9);
        for weight in [Weight::Count, Weight::MedianTime] {
            let text = dot(&sample(), weight);
            let parsed = layout::gv::DotParser::new(&text).process();
            assert!(parsed.is_ok(), "{parsed:?}\n{text}");
        }
    }

    #[test]
    fn dot_labels_median_times() {
        let text = dot(&sample(), Weight::MedianTime);
        for label in ["45s", "1d 2h", "3h 5m", "?", "12m"] {
            assert!(
                text.contains(&format!("[label=\"{label}\"")),
                "{label}: {text}"
            );
        }
        // Start and end edges still say how many journeys.
        assert!(
            text.contains("\"start\" -> \"tp_T1\" [label=\"300\""),
            "{text}"
        );
    }

    #[test]
    fn mermaid_uses_safe_ids_and_entity_escapes() {
        let text = mermaid(&sample(), Weight::Count);
        assert!(text.starts_with("flowchart TB\n"));
        assert!(text.contains("  n0[\"접수 #quot;창구#quot;\"]\n"), "{text}");
        assert!(
            text.contains("  n1[\"수납 #lt;#amp;#gt; \\ 결제\"]\n"),
            "{text}"
        );
        assert!(text.contains("  n2[\"진료<br>예약\"]\n"), "{text}");
        assert!(text.contains("  n3[\"대기 #35;1 #96;x#96;\"]\n"), "{text}");
        assert!(text.contains("  nstart -->|900| n0\n"), "{text}");
        assert!(text.contains("  n1 -->|700| nend\n"), "{text}");
        assert!(text.contains("  n3 -->|80| n3\n"), "{text}");
        assert!(text.contains("  n1 -.->|10| n0\n"), "{text}");
        assert!(text.contains("  class n0 key\n"), "{text}");
        let links = text
            .lines()
            .filter(|line| line.contains("-->|") || line.contains("-.->|"))
            .count();
        assert_eq!(links, 9);
        let styles: Vec<&str> = text
            .lines()
            .filter(|line| line.trim_start().starts_with("linkStyle "))
            .collect();
        assert_eq!(styles.len(), links);
        assert!(
            styles.iter().any(|line| line.contains("stroke:#d62728")),
            "{text}"
        );
        // No node id is a bare keyword and no label leaks a quote.
        for line in text.lines().filter(|line| line.contains("[\"")) {
            let inner = line
                .split_once("[\"")
                .map(|(_, rest)| rest.trim_end_matches("\"]"))
                .unwrap_or_default();
            assert!(!inner.contains('"'), "{line}");
        }
    }

    /// The counting that `svg`'s doc comment describes: `g` elements whose
    /// class has all of `words`. By string matching here; the same counts
    /// were checked on the parsed XML while this was written.
    fn groups(svg: &str, words: &str) -> usize {
        svg.split("<g class=\"")
            .skip(1)
            .filter(|rest| {
                let class: Vec<&str> = rest
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                words.split_whitespace().all(|word| class.contains(&word))
            })
            .count()
    }

    #[test]
    fn svg_has_a_group_per_node_and_edge() {
        for weight in [Weight::Count, Weight::MedianTime] {
            let svg = svg(&sample(), weight).unwrap_or_else(|err| panic!("{err}"));
            assert!(svg.starts_with("<?xml"));
            assert!(svg.trim_end().ends_with("</svg>"));
            assert_eq!(groups(&svg, "node"), 4 + 2);
            assert_eq!(groups(&svg, "node touchpoint"), 4);
            assert_eq!(groups(&svg, "node touchpoint key"), 1);
            assert_eq!(groups(&svg, "node start"), 1);
            assert_eq!(groups(&svg, "node end"), 1);
            assert_eq!(groups(&svg, "edge"), 9);
            assert_eq!(groups(&svg, "edge start"), 2);
            assert_eq!(groups(&svg, "edge end"), 2);
            assert_eq!(groups(&svg, "edge against"), 1);
            assert_eq!(occurrences(&svg, "<path "), 9);
            assert!(
                svg.contains("<g class=\"edge\" data-from=\"T2\" data-to=\"T2\">"),
                "{svg}"
            );
            assert!(
                svg.contains("<g class=\"edge start\" data-to=\"start\">"),
                "{svg}"
            );
            assert!(
                svg.contains("<g class=\"edge end\" data-from=\"end\">"),
                "{svg}"
            );
            assert!(
                svg.contains("<g class=\"node touchpoint\" data-code=\"end\">"),
                "{svg}"
            );
            let against = svg
                .split("<g class=\"edge against\"")
                .nth(1)
                .unwrap_or_default();
            let against = against.split("</g>").next().unwrap_or_default();
            assert!(
                against.contains("stroke=\"#d62728\"") && against.contains("stroke-dasharray"),
                "{against}"
            );
        }
    }

    #[test]
    fn svg_escapes_every_label() {
        let svg = svg(&sample(), Weight::Count).unwrap_or_else(|err| panic!("{err}"));
        assert!(svg.contains("수납 &lt;&amp;&gt; \\ 결제"), "{svg}");
        assert!(svg.contains("접수 &quot;창구&quot;"), "{svg}");
        assert!(!svg.contains("<&>"));
        // Outside tags, no raw '<' or '&' that does not start an entity.
        for piece in svg
            .split('>')
            .map(|rest| rest.split('<').next().unwrap_or_default())
        {
            for (at, _) in piece.match_indices('&') {
                let entity = &piece[at..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "{piece}"
                );
            }
        }
        let nasty = Diagram {
            nodes: vec![node("X", "a\u{0}b\u{1b}c\r\nd\u{FFFF}]]><!--", false, 1, 1)],
            edges: vec![],
        };
        let svg = super::svg(&nasty, Weight::Count).unwrap_or_else(|err| panic!("{err}"));
        assert!(!svg.chars().any(|c| c.is_control() && c != '\n'), "{svg:?}");
        assert!(!svg.contains('\u{FFFF}'));
        assert!(svg.contains("]]&gt;&lt;!--"), "{svg}");
        // Two lines, the terminals, and the labels of the edges to them.
        assert_eq!(occurrences(&svg, "<tspan"), 2 + 2 + 2);
    }

    #[test]
    fn svg_of_an_empty_map_has_only_the_terminals() {
        let svg = svg(
            &Diagram {
                nodes: vec![],
                edges: vec![],
            },
            Weight::Count,
        )
        .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(groups(&svg, "node"), 2);
        assert_eq!(groups(&svg, "edge"), 0);
    }

    /// A tiny deterministic generator, so the test needs no crate.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            if n == 0 {
                0
            } else {
                ((self.0 >> 33) % n as u64) as usize
            }
        }
    }

    fn random_map(rng: &mut Lcg, nodes: usize, edges: usize) -> Diagram {
        let pieces = [
            "가", "<", "&", "\"", "\\", "\n", "\r", "\u{0}", "#", "`", "x", " ", "🙂",
        ];
        let codes = [
            "start", "end", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L",
        ];
        let nodes: Vec<Node> = (0..nodes)
            .map(|_| {
                let label: String = (0..rng.below(6))
                    .map(|_| pieces[rng.below(pieces.len())])
                    .collect();
                let starts = [0, 0, 3, -1, i64::MAX][rng.below(5)];
                let ends = [0, 0, 2, i64::MIN][rng.below(4)];
                node(
                    codes[rng.below(codes.len())],
                    &label,
                    rng.below(3) == 0,
                    starts,
                    ends,
                )
            })
            .collect();
        let edges = (0..edges)
            .map(|_| {
                let from = codes[rng.below(codes.len())];
                let to = codes[rng.below(codes.len())];
                let count = [1, 7, 0, -3, i64::MAX, i64::MIN][rng.below(6)];
                let median = [
                    None,
                    Some(0.0),
                    Some(f64::NAN),
                    Some(-1.0),
                    Some(1e300),
                    Some(90_061.0),
                ][rng.below(6)];
                edge(from, to, count, median, rng.below(4) == 0)
            })
            .collect();
        Diagram { nodes, edges }
    }

    #[test]
    fn random_maps_draw_without_panicking() {
        let mut rng = Lcg(11);
        for _ in 0..40 {
            let (nodes, edges) = (rng.below(14), rng.below(30));
            let map = random_map(&mut rng, nodes, edges);
            let distinct = map
                .nodes
                .iter()
                .map(|n| n.code.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len();
            for weight in [Weight::Count, Weight::MedianTime] {
                let _ = dot(&map, weight);
                let _ = mermaid(&map, weight);
                let svg = svg(&map, weight).unwrap_or_else(|err| panic!("{err}: {map:?}"));
                assert_eq!(groups(&svg, "node"), distinct + 2, "{map:?}");
            }
        }
    }

    #[test]
    fn svg_refuses_maps_too_big_to_lay_out() {
        let nodes: Vec<Node> = (0..150)
            .map(|i| node(&format!("T{i}"), "x", false, i64::from(i < 3), 1))
            .collect();
        let mut rng = Lcg(3);
        let edges = (0..1_500)
            .map(|_| {
                edge(
                    &format!("T{}", rng.below(150)),
                    &format!("T{}", rng.below(150)),
                    5,
                    Some(60.0),
                    false,
                )
            })
            .collect();
        let started = std::time::Instant::now();
        let result = svg(&Diagram { nodes, edges }, Weight::Count);
        assert!(matches!(result, Err(SvgError::TooBig(_))), "{result:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn panics_become_errors() {
        assert_eq!(guarded(|| 7), Ok(7));
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let from_str = guarded(|| -> u8 { panic!("boom") });
        let from_string = guarded(|| -> u8 { panic!("{}", String::from("bang")) });
        std::panic::set_hook(quiet);
        assert_eq!(from_str, Err("boom".to_owned()));
        assert_eq!(from_string, Err("bang".to_owned()));
    }
}
