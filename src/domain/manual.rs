//! The service manual (MOT manual): the designed cycle written out for staff,
//! stage by stage and touchpoint by touchpoint, with each standard's guidance.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{
    standard::{Severity, Standard},
    touchpoint::{Stage, Touchpoint},
};

/// The manual as structured data.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceManual {
    pub organisation_name: String,
    pub organisation_standards: Vec<Standard>,
    pub stages: Vec<ManualStage>,
    pub generate_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManualStage {
    pub stage: Stage,
    pub touchpoints: Vec<ManualTouchpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManualTouchpoint {
    pub touchpoint: Touchpoint,
    pub standards: Vec<Standard>,
}

/// Puts active touchpoints and active standards in manual order: stages in
/// cycle order; inside a stage the designed cycle by cycle_position, then the
/// touchpoints outside it (position 0) by code; standards critical first,
/// then by code. Archived touchpoints and standards are left out.
pub fn assemble(
    organisation_name: String,
    touchpoints: Vec<Touchpoint>,
    standards: Vec<Standard>,
    generate_time: DateTime<Utc>,
) -> ServiceManual {
    let mut standards: Vec<Standard> = standards.into_iter().filter(|s| s.is_active()).collect();
    standards.sort_by(|a, b| {
        severity_rank(a.severity)
            .cmp(&severity_rank(b.severity))
            .then_with(|| a.code.to_lowercase().cmp(&b.code.to_lowercase()))
    });
    let (organisation_standards, attached): (Vec<Standard>, Vec<Standard>) =
        standards.into_iter().partition(|s| s.touchpoint.is_none());

    let mut touchpoints: Vec<Touchpoint> = touchpoints
        .into_iter()
        .filter(|t| !t.is_archived())
        .collect();
    touchpoints.sort_by(|a, b| {
        (
            a.cycle_position == 0,
            a.cycle_position,
            a.code.to_lowercase(),
        )
            .cmp(&(
                b.cycle_position == 0,
                b.cycle_position,
                b.code.to_lowercase(),
            ))
    });

    let stages = Stage::ALL
        .iter()
        .map(|&stage| ManualStage {
            stage,
            touchpoints: touchpoints
                .iter()
                .filter(|t| t.stage == stage)
                .map(|t| ManualTouchpoint {
                    touchpoint: t.clone(),
                    standards: attached
                        .iter()
                        .filter(|s| s.touchpoint.as_ref().is_some_and(|r| r.id == t.id))
                        .cloned()
                        .collect(),
                })
                .collect(),
        })
        .collect();

    ServiceManual {
        organisation_name,
        organisation_standards,
        stages,
        generate_time,
    }
}

fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 0,
        Severity::Minor => 1,
    }
}

fn stage_title(stage: Stage) -> &'static str {
    match stage {
        Stage::PreService => "Before the service",
        Stage::Service => "The service",
        Stage::PostService => "After the service",
    }
}

/// A piece of the manual, in reading order. A manual too long for one
/// answer is cut into pages between parts; a page that opens inside a
/// stage or a touchpoint repeats its heading, marked continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The title and the introduction.
    Header,
    /// The standard at this index of the organisation-wide ones.
    OrganisationStandard(usize),
    /// The heading of the stage at this index.
    Stage(usize),
    /// A touchpoint of a stage (stage index, touchpoint index).
    Touchpoint(usize, usize),
    /// A standard of a touchpoint (stage, touchpoint, standard index).
    Standard(usize, usize, usize),
}

/// What a part costs in an answer besides its texts: ids, enums, times,
/// field tags, Markdown around the texts.
const PART_OVERHEAD: usize = 512;

impl ServiceManual {
    /// Every part of the manual, in order.
    pub fn parts(&self) -> Vec<Part> {
        let mut parts = vec![Part::Header];
        parts.extend((0..self.organisation_standards.len()).map(Part::OrganisationStandard));
        for (s, stage) in self.stages.iter().enumerate() {
            parts.push(Part::Stage(s));
            for (t, entry) in stage.touchpoints.iter().enumerate() {
                parts.push(Part::Touchpoint(s, t));
                parts.extend((0..entry.standards.len()).map(|k| Part::Standard(s, t, k)));
            }
        }
        parts
    }

    /// About how many bytes `part` takes in an answer: its texts twice (in
    /// the structured manual and in the Markdown), escaping and the rest
    /// allowed for.
    pub fn part_bytes(&self, part: Part) -> usize {
        let standard = |s: &Standard| s.title.len() + s.guidance.len() + s.code.len();
        let texts = match part {
            Part::Header => self.organisation_name.len() + 400,
            Part::OrganisationStandard(i) => standard(&self.organisation_standards[i]),
            Part::Stage(_) => 0,
            Part::Touchpoint(s, t) => {
                let t = &self.stages[s].touchpoints[t].touchpoint;
                t.display_name.len() + t.description.len() + t.code.len()
            }
            Part::Standard(s, t, k) => standard(&self.stages[s].touchpoints[t].standards[k]),
        };
        // Escaping may double a text in Markdown.
        3 * texts + PART_OVERHEAD
    }

    /// The parts of the page that starts at part `from`: as many as fit in
    /// `budget` bytes (one at least), and parts of at most
    /// `most_touchpoints` touchpoints.
    pub fn page(&self, from: usize, budget: usize, most_touchpoints: usize) -> Vec<Part> {
        let mut used = 0usize;
        let mut touchpoints = 0usize;
        let mut page = Vec::new();
        for part in self.parts().into_iter().skip(from) {
            if matches!(part, Part::Touchpoint(..))
                || (page.is_empty() && matches!(part, Part::Standard(..)))
            {
                touchpoints += 1;
            }
            used = used.saturating_add(self.part_bytes(part));
            if !page.is_empty() && (used > budget || touchpoints > most_touchpoints) {
                break;
            }
            page.push(part);
        }
        page
    }

    /// The manual with only `parts` in it: the stages it touches, the
    /// touchpoints with a part among them, and the standards among them.
    pub fn only(&self, parts: &[Part]) -> ServiceManual {
        let organisation_standards = parts
            .iter()
            .filter_map(|part| match part {
                Part::OrganisationStandard(i) => Some(self.organisation_standards[*i].clone()),
                _ => None,
            })
            .collect();
        let stages = self
            .stages
            .iter()
            .enumerate()
            .filter(|(s, _)| parts.iter().any(|part| part_stage(*part) == Some(*s)))
            .map(|(s, stage)| ManualStage {
                stage: stage.stage,
                touchpoints: stage
                    .touchpoints
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| {
                        parts.iter().any(|part| {
                            matches!(part, Part::Touchpoint(ps, pt) | Part::Standard(ps, pt, _)
                                if *ps == s && pt == t)
                        })
                    })
                    .map(|(t, entry)| ManualTouchpoint {
                        touchpoint: entry.touchpoint.clone(),
                        standards: entry
                            .standards
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| parts.contains(&Part::Standard(s, t, *k)))
                            .map(|(_, standard)| standard.clone())
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        ServiceManual {
            organisation_name: self.organisation_name.clone(),
            organisation_standards,
            stages,
            generate_time: self.generate_time,
        }
    }
}

impl ServiceManual {
    /// Keeps `stage` only, with the organisation-wide standards.
    pub fn keep_stage(&mut self, stage: Stage) {
        self.stages.retain(|s| s.stage == stage);
    }
}

/// The stage a part belongs to, if any.
fn part_stage(part: Part) -> Option<usize> {
    match part {
        Part::Stage(s) | Part::Touchpoint(s, _) | Part::Standard(s, _, _) => Some(s),
        Part::Header | Part::OrganisationStandard(_) => None,
    }
}

/// Renders the manual as CommonMark. Every text people typed is escaped, so
/// a name or a guidance line is printed as written and never turns into a
/// heading, a link or HTML.
pub fn render_markdown(manual: &ServiceManual) -> String {
    render_parts(manual, &manual.parts())
}

/// Renders `parts` of the manual (one page) as CommonMark, numbered as in
/// the whole manual.
pub fn render_parts(manual: &ServiceManual, parts: &[Part]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let opens_page = i == 0;
        match *part {
            Part::Header => write_header(&mut out, manual),
            Part::OrganisationStandard(k) => {
                if k == 0 || opens_page {
                    let continued = if k > 0 { " (continued)" } else { "" };
                    let _ = writeln!(out, "## At every touchpoint{continued}\n");
                }
                write_standard(&mut out, &manual.organisation_standards[k]);
            }
            Part::Stage(s) => {
                write_stage_heading(&mut out, &manual.stages[s], "");
                if manual.stages[s].touchpoints.is_empty() {
                    let _ = writeln!(out, "*No touchpoints in this stage.*\n");
                }
            }
            Part::Touchpoint(s, t) => {
                if opens_page {
                    write_stage_heading(&mut out, &manual.stages[s], " (continued)");
                }
                write_touchpoint(&mut out, &manual.stages[s], t, "");
            }
            Part::Standard(s, t, k) => {
                if opens_page {
                    write_stage_heading(&mut out, &manual.stages[s], " (continued)");
                    write_touchpoint(&mut out, &manual.stages[s], t, " (continued)");
                }
                write_standard(&mut out, &manual.stages[s].touchpoints[t].standards[k]);
            }
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn write_header(out: &mut String, manual: &ServiceManual) {
    let _ = writeln!(
        out,
        "# {} — service manual\n",
        escape_line(&manual.organisation_name)
    );
    let _ = writeln!(
        out,
        "The designed Moments of Truth cycle, from the first contact to the last, with the \
         standard every member of staff keeps at each touchpoint. Key touchpoints are marked ★. \
         Breaking a *critical* standard fails the whole encounter: 100 − 1 = 0.\n"
    );
    let _ = writeln!(
        out,
        "Generated {}.\n",
        manual.generate_time.format("%Y-%m-%d %H:%M UTC")
    );
}

/// The stage's number in the cycle (1 to 3).
fn stage_number(stage: Stage) -> usize {
    Stage::ALL
        .iter()
        .position(|s| *s == stage)
        .map_or(0, |i| i + 1)
}

fn write_stage_heading(out: &mut String, stage: &ManualStage, continued: &str) {
    let number = stage_number(stage.stage);
    let _ = writeln!(
        out,
        "## {number}. {}{continued}\n",
        stage_title(stage.stage)
    );
}

/// The touchpoint's heading and facts; on a page it continues, its
/// heading only.
fn write_touchpoint(out: &mut String, stage: &ManualStage, index: usize, continued: &str) {
    let number = stage_number(stage.stage);
    let entry = &stage.touchpoints[index];
    let t = &entry.touchpoint;
    let star = if t.key { " ★" } else { "" };
    let _ = writeln!(
        out,
        "### {number}.{} {}{star}{continued}\n",
        index + 1,
        escape_line(&t.display_name)
    );
    if !continued.is_empty() {
        return;
    }
    let mut facts = format!("Code `{}` · {}", t.code, channel_text(t));
    if t.cycle_position == 0 {
        facts.push_str(" · outside the designed cycle");
    }
    let _ = writeln!(out, "{facts}\n");
    if !t.description.is_empty() {
        let _ = writeln!(out, "{}\n", escape_block(&t.description));
    }
    if entry.standards.is_empty() {
        let _ = writeln!(out, "*No standards yet.*\n");
    }
}

fn channel_text(touchpoint: &Touchpoint) -> &'static str {
    use super::touchpoint::Channel;
    match touchpoint.channel {
        Channel::InPerson => "in person",
        Channel::Phone => "by phone",
        Channel::Remote => "remote",
    }
}

fn write_standard(out: &mut String, standard: &Standard) {
    let _ = writeln!(
        out,
        "#### {} (`{}`)\n",
        escape_line(&standard.title),
        standard.code
    );
    let severity = match standard.severity {
        Severity::Critical => "**critical**",
        Severity::Minor => "minor",
    };
    let _ = writeln!(
        out,
        "- Element: {}\n- Severity: {severity}\n- Rule: `{}`\n",
        standard.element, standard.rule
    );
    if !standard.guidance.is_empty() {
        let _ = writeln!(out, "{}\n", escape_block(&standard.guidance));
    }
}

/// Escapes a single line so that it prints as written.
fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '!' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes a text of several lines: each line as written, line breaks kept
/// as hard breaks, blank lines as paragraph breaks.
fn escape_block(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.trim_end();
            let escaped = escape_line(line.trim_start());
            // A line starting like a list item, a heading underline or a
            // block quote would change the block's structure.
            let starts_a_block = escaped.starts_with(['-', '+', '='])
                || escaped
                    .split_once(['.', ')'])
                    .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if starts_a_block {
                escape_block_start(&escaped)
            } else {
                escaped
            }
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        let next_blank = lines.get(i + 1).is_none_or(|l| l.is_empty());
        if i + 1 < lines.len() {
            if !line.is_empty() && !next_blank {
                out.push('\\');
            }
            out.push('\n');
        }
    }
    out
}

/// Escapes the character that would open a block at a line's start: the
/// marker of `- item`, `+ item`, `===`, or the `.`/`)` of `1. item`.
fn escape_block_start(line: &str) -> String {
    if line.starts_with(['-', '+', '=']) {
        return format!("\\{line}");
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    format!("{}\\{}", &line[..digits], &line[digits..])
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        standard::{Comparison, Element, MetricField, Rule, TouchpointRef},
        touchpoint::{Channel, Occurrence},
    };

    fn touchpoint(code: &str, stage: Stage, position: i32) -> Touchpoint {
        let now = Utc::now();
        Touchpoint {
            id: Uuid::now_v7(),
            code: code.into(),
            display_name: code.to_uppercase(),
            description: String::new(),
            stage,
            channel: Channel::InPerson,
            key: false,
            occurrence: Occurrence::Routine,
            cycle_position: position,
            create_time: now,
            update_time: now,
            archive_time: None,
        }
    }

    fn standard(code: &str, at: Option<&Touchpoint>, severity: Severity) -> Standard {
        let now = Utc::now();
        Standard {
            id: Uuid::now_v7(),
            revision_id: Uuid::now_v7(),
            code: code.into(),
            title: format!("Title of {code}"),
            touchpoint: at.map(|t| TouchpointRef {
                id: t.id,
                code: t.code.clone(),
            }),
            element: Element::Humanware,
            severity,
            guidance: String::new(),
            rule: Rule::Metric {
                field: MetricField::WaitSeconds,
                comparison: Comparison::LessOrEqual,
                threshold: 1800.0,
            },
            create_time: now,
            update_time: now,
            archive_time: None,
        }
    }

    #[test]
    fn touchpoints_follow_stage_then_cycle_position_and_unplaced_ones_come_last() {
        let mut archived = touchpoint("old-desk", Stage::Service, 1);
        archived.archive_time = Some(Utc::now());
        let touchpoints = vec![
            touchpoint("happy-call", Stage::PostService, 110),
            touchpoint("complaint", Stage::Service, 0),
            touchpoint("waiting", Stage::Service, 60),
            touchpoint("desk", Stage::Service, 50),
            touchpoint("booking", Stage::PreService, 10),
            archived,
        ];
        let manual = assemble("H".into(), touchpoints, vec![], Utc::now());
        let order: Vec<Vec<&str>> = manual
            .stages
            .iter()
            .map(|s| {
                s.touchpoints
                    .iter()
                    .map(|t| t.touchpoint.code.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            order,
            [
                vec!["booking"],
                vec!["desk", "waiting", "complaint"],
                vec!["happy-call"]
            ]
        );
    }

    #[test]
    fn standards_go_to_their_touchpoint_critical_first_and_archived_ones_are_left_out() {
        let desk = touchpoint("desk", Stage::Service, 50);
        let mut archived = standard("a-old", Some(&desk), Severity::Critical);
        archived.archive_time = Some(Utc::now());
        let standards = vec![
            standard("b-minor", Some(&desk), Severity::Minor),
            standard("z-critical", Some(&desk), Severity::Critical),
            standard("badge", None, Severity::Minor),
            archived,
        ];
        let manual = assemble("H".into(), vec![desk], standards, Utc::now());
        let codes: Vec<&str> = manual.stages[1].touchpoints[0]
            .standards
            .iter()
            .map(|s| s.code.as_str())
            .collect();
        assert_eq!(codes, ["z-critical", "b-minor"]);
        assert_eq!(manual.organisation_standards.len(), 1);
        assert_eq!(manual.organisation_standards[0].code, "badge");
    }

    #[test]
    fn the_markdown_numbers_stages_and_touchpoints_and_prints_rules() {
        let mut desk = touchpoint("desk", Stage::Service, 50);
        desk.display_name = "Reception desk".into();
        desk.key = true;
        let mut greet = standard("greet-15s", Some(&desk), Severity::Critical);
        greet.title = "Greet within 15 seconds".into();
        greet.guidance = "Stand up.\nSmile and say hello.".into();
        greet.rule = Rule::Metric {
            field: MetricField::FirstResponseSeconds,
            comparison: Comparison::LessOrEqual,
            threshold: 15.0,
        };
        let manual = assemble("St. Mary".into(), vec![desk], vec![greet], Utc::now());
        let markdown = render_markdown(&manual);
        assert!(markdown.starts_with("# St. Mary — service manual\n"));
        assert!(markdown.contains("## 1. Before the service\n\n*No touchpoints in this stage.*"));
        assert!(markdown.contains("## 2. The service\n\n### 2.1 Reception desk ★\n"));
        assert!(markdown.contains("#### Greet within 15 seconds (`greet-15s`)\n"));
        assert!(
            markdown.contains("- Severity: **critical**\n- Rule: `first_response_seconds <= 15`")
        );
        assert!(markdown.contains("Stand up.\\\nSmile and say hello.\n"));
        assert!(markdown.contains("## 3. After the service"));
        assert!(markdown.ends_with('\n') && !markdown.ends_with("\n\n"));
    }

    #[test]
    fn typed_text_cannot_change_the_documents_structure() {
        assert_eq!(escape_line("# not a heading"), "\\# not a heading");
        assert_eq!(
            escape_line("[link](http://x) <b>*bold*</b>"),
            "\\[link\\](http://x) \\<b\\>\\*bold\\*\\</b\\>"
        );
        assert_eq!(
            escape_block("1. Greet\n2) Ask\n- item\n> quote\n\nNew paragraph"),
            "1\\. Greet\\\n2\\) Ask\\\n\\- item\\\n\\> quote\n\nNew paragraph"
        );
        assert_eq!(
            escape_block("2026 was a good year."),
            "2026 was a good year."
        );
    }

    /// A manual of two stages' touchpoints with long guidance.
    fn long_manual() -> ServiceManual {
        let desk = touchpoint("desk", Stage::Service, 10);
        let lab = touchpoint("lab", Stage::Service, 20);
        let call = touchpoint("call", Stage::PostService, 10);
        let mut standards = vec![standard("badge", None, Severity::Minor)];
        for (at, n) in [(&desk, 3), (&lab, 2), (&call, 1)] {
            for k in 0..n {
                let mut s = standard(&format!("{}-{k}", at.code), Some(at), Severity::Minor);
                s.guidance = "Say hello. ".repeat(1000);
                standards.push(s);
            }
        }
        assemble(
            "St. Mary".into(),
            vec![desk, lab, call],
            standards,
            Utc::now(),
        )
    }

    #[test]
    fn pages_cut_the_manual_between_parts_and_cover_it_once() {
        let manual = long_manual();
        let all = manual.parts();
        let mut from = 0;
        let mut pages = Vec::new();
        while from < all.len() {
            let page = manual.page(from, 40_000, usize::MAX);
            assert!(!page.is_empty());
            let bytes: usize = page.iter().map(|p| manual.part_bytes(*p)).sum();
            assert!(page.len() == 1 || bytes <= 40_000, "{bytes}");
            from += page.len();
            pages.push(page);
        }
        assert!(pages.len() > 2, "{} pages", pages.len());
        assert_eq!(pages.concat(), all);
        // Every standard comes on exactly one page.
        let codes: Vec<String> = pages
            .iter()
            .flat_map(|page| {
                let part = manual.only(page);
                let mut codes: Vec<String> = part
                    .organisation_standards
                    .iter()
                    .map(|s| s.code.clone())
                    .collect();
                for stage in &part.stages {
                    for entry in &stage.touchpoints {
                        codes.extend(entry.standards.iter().map(|s| s.code.clone()));
                    }
                }
                codes
            })
            .collect();
        assert_eq!(codes.len(), 7);
        // A page opening inside a touchpoint says whose standards follow.
        let inside = pages
            .iter()
            .find(|page| matches!(page[0], Part::Standard(..)))
            .expect("no page opens inside a touchpoint");
        let markdown = render_parts(&manual, inside);
        assert!(
            markdown.starts_with("## 2. The service (continued)"),
            "{markdown}"
        );
        assert!(markdown.contains("(continued)\n\n#### "), "{markdown}");
    }

    #[test]
    fn one_page_is_the_whole_manual_and_page_size_counts_touchpoints() {
        let manual = long_manual();
        let whole = manual.page(0, usize::MAX, usize::MAX);
        assert_eq!(whole, manual.parts());
        assert_eq!(manual.only(&whole), manual);
        assert_eq!(render_parts(&manual, &whole), render_markdown(&manual));
        let two = manual.page(0, usize::MAX, 2);
        let touchpoints = two
            .iter()
            .filter(|p| matches!(p, Part::Touchpoint(..)))
            .count();
        assert_eq!(touchpoints, 2);
        let mut only_service = manual.clone();
        only_service.keep_stage(Stage::Service);
        assert_eq!(only_service.stages.len(), 1);
        assert_eq!(only_service.organisation_standards.len(), 1);
    }
}
