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
use layout::std_shapes::render::get_shape_size;
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
/// (left to right is a transposition, and the label placement below assumes
/// it does not happen), and process maps of 10 to 60 touchpoints are deep
/// rather than wide.
const RANKDIR: &str = "TB";

const KEY_FILL: &str = "#fde68a";
const TERMINAL_FILL: &str = "#e5e7eb";
const AGAINST_COLOUR: &str = "#d62728";
const EDGE_COLOUR: &str = "#555555";
const NODE_STROKE: &str = "#444444";

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
            End::Touchpoint(i) => dot_quote(&format!("tp_{}", plan.nodes[i].code)),
        };
        let to = match edge.to {
            End::Terminal => "\"end\"".to_owned(),
            End::Touchpoint(i) => dot_quote(&format!("tp_{}", plan.nodes[i].code)),
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
        let _ = writeln!(
            out,
            "  {from} {arrow}|\"{}\"| {to}",
            mermaid_text(&edge.label)
        );
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
///   end `class="edge end"` with `data-from`; the group holds one `path` and
///   normally the edge's label `text`.
///
/// So a map with N touchpoints, E drawable edges, S touchpoints with starts
/// and F with ends has N + 2 node groups and E + S + F edge groups.
///
/// Errs when layout-rs panics, which it does on inputs it was not written
/// for; the panic is caught here so that a bad map costs one picture, not
/// the worker (its message still goes to the panic hook, i.e. stderr).
pub fn svg(diagram: &Diagram, weight: Weight) -> Result<String, String> {
    let plan = Plan::new(diagram, weight);
    let drawn = catch_unwind(AssertUnwindSafe(|| lay_out(&plan)));
    match drawn {
        Ok(canvas) => Ok(canvas.finish(&plan)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(format!("layout-rs failed to lay out the map: {message}"))
        }
    }
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

fn lay_out(plan: &Plan) -> Canvas {
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

    let rank = ranks(plan, count);
    let mut order: Vec<(usize, usize, usize, bool)> = Vec::with_capacity(plan.edges.len());
    for (i, edge) in plan.edges.iter().enumerate() {
        let from = layout_index(edge.from, true, touchpoints);
        let to = layout_index(edge.to, false, touchpoints);
        let reversed = rank[from] > rank[to];
        let (top, bottom) = if reversed { (to, from) } else { (from, to) };
        order.push((i, top, bottom, reversed));
    }
    order.sort_by_key(|&(i, top, _, _)| (rank[top], i));

    for (i, top, bottom, reversed) in order {
        let edge = &plan.edges[i];
        let colour = if edge.against {
            AGAINST_COLOUR
        } else {
            EDGE_COLOUR
        };
        let look = StyleAttr::new(
            Color::fast(colour),
            edge.pen.round() as usize,
            None,
            0,
            EDGE_FONT,
        );
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
        let arrow = Arrow::with_properties(
            start,
            end,
            style,
            &edge.label,
            &look,
            edge_tag(i),
            &None,
            &None,
        );
        graph.add_edge(arrow, handles[top], handles[bottom]);
    }

    let mut canvas = Canvas {
        keys: std::iter::once(false)
            .chain(plan.nodes.iter().map(|node| node.key))
            .chain(std::iter::once(false))
            .collect(),
        ..Canvas::default()
    };
    graph.do_it(false, false, false, &mut canvas);
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
    /// Where the edge passes through connectors, one of which may carry its
    /// label.
    via: Vec<Point>,
    path: String,
    dashed: bool,
    head: (bool, bool),
}

/// Which label (by index) each drawn edge carries, and the labels no edge
/// passes by, which layout-rs should not produce.
///
/// An edge passes exactly through the middle of each connector on its way,
/// the point just right of its label's text.
fn pair_labels(
    edges: &[DrawnEdge],
    labels: &[(Point, String)],
) -> (Vec<Option<usize>>, Vec<usize>) {
    let key = |p: Point| ((p.x * 4.0).round() as i64, (p.y * 4.0).round() as i64);
    let mut passes: HashMap<(i64, i64), usize> = HashMap::new();
    for (k, edge) in edges.iter().enumerate() {
        for point in &edge.via {
            passes.entry(key(*point)).or_insert(k);
        }
    }
    let mut own = vec![None; edges.len()];
    let mut stray = Vec::new();
    for (l, (right, _)) in labels.iter().enumerate() {
        let (x, y) = key(Point::new(right.x + LABEL_GAP, right.y));
        let found = [
            (0, 0),
            (-1, 0),
            (1, 0),
            (0, -1),
            (0, 1),
            (-1, -1),
            (-1, 1),
            (1, -1),
            (1, 1),
        ]
        .iter()
        .find_map(|(dx, dy)| passes.get(&(x + dx, y + dy)).copied());
        match found {
            Some(k) if own[k].is_none() => own[k] = Some(l),
            _ => stray.push(l),
        }
    }
    (own, stray)
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
    /// Edge labels as (right end of the text, text).
    labels: Vec<(Point, String)>,
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

    fn finish(mut self, plan: &Plan) -> String {
        self.close_open();
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

        let labels = std::mem::take(&mut self.labels);
        let edges = std::mem::take(&mut self.edges);
        let (own, stray) = pair_labels(&edges, &labels);
        out.push_str("<g class=\"edges\">\n");
        for (k, drawn) in edges.iter().enumerate() {
            let Some(edge) = plan.edges.get(drawn.index) else {
                continue;
            };
            let mut class = String::from("edge");
            let mut data = String::new();
            match edge.from {
                End::Terminal => class.push_str(" start"),
                End::Touchpoint(i) => {
                    let _ = write!(data, " data-from=\"{}\"", xml_text(&plan.nodes[i].code));
                }
            }
            match edge.to {
                End::Terminal => class.push_str(" end"),
                End::Touchpoint(i) => {
                    let _ = write!(data, " data-to=\"{}\"", xml_text(&plan.nodes[i].code));
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
            if let Some(&Some(l)) = own.get(k)
                && let Some((right, text)) = labels.get(l)
            {
                let fill = if edge.against {
                    AGAINST_COLOUR
                } else {
                    LABEL_COLOUR
                };
                let extra = format!(" class=\"label\" fill=\"{fill}\"{LABEL_HALO}");
                out.push_str(&text_svg(*right, "end", text, EDGE_FONT as f64, &extra));
            }
            out.push_str("</g>\n");
        }
        out.push_str("</g>\n");
        if !stray.is_empty() {
            out.push_str("<g class=\"edge-labels\">\n");
            for (right, text) in stray.iter().filter_map(|&l| labels.get(l)) {
                let extra = format!(" class=\"label\" fill=\"{LABEL_COLOUR}\"{LABEL_HALO}");
                out.push_str(&text_svg(*right, "end", text, EDGE_FONT as f64, &extra));
            }
            out.push_str("</g>\n");
        }

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
        self.grow(xy.x - size.x / 2.0, xy.y - size.y / 2.0);
        self.grow(xy.x + size.x / 2.0, xy.y + size.y / 2.0);
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
        match self.open.take() {
            Some(mut open) => {
                let key = self.keys.get(open.index).copied().unwrap_or(false);
                let extra = if key { " font-weight=\"bold\"" } else { "" };
                let element = self.text_element(xy, text, look.font_size as f64, extra);
                open.shape.push_str(&element);
                self.nodes.push((open.index, open.shape));
            }
            None => {
                // A label's connector is a box as wide as layout-rs thinks
                // the text is, centred on `xy`, with the edge through its
                // right side; the text ends just before the edge.
                let connector = get_shape_size(
                    Orientation::LeftToRight,
                    &ShapeKind::new_connector(text),
                    look.font_size,
                    false,
                );
                let right = Point::new(xy.x + connector.x / 2.0 - LABEL_GAP, xy.y);
                // layout-rs moves labels between an edge's connectors and
                // draws them with the nodes, so they are matched to their
                // edges later by where the edge passes.
                let (w, h) = text_size(text, EDGE_FONT as f64);
                self.grow(right.x - w, right.y - h / 2.0);
                self.grow(right.x, right.y + h / 2.0);
                self.labels.push((right, text.to_owned()));
            }
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
        let Some(index) = parse_tag(&properties, 'e') else {
            return;
        };
        let mut d = String::new();
        for (i, (a, b)) in path.iter().enumerate() {
            self.grow(a.x, a.y);
            self.grow(b.x, b.y);
            // layout-rs's path: the first pair is a point and its exit
            // control, each later pair an entry control and a point.
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
        if path.len() < 2 {
            return;
        }
        let via = path
            .iter()
            .skip(1)
            .take(path.len().saturating_sub(2))
            .map(|(_, point)| *point)
            .collect();
        self.edges.push(DrawnEdge {
            index,
            via,
            path: d,
            dashed,
            head,
        });
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        0
    }
}
