//! Event logs for process-mining tools, as CSV and IEEE XES, written an
//! event at a time so that an export never holds the whole log.
//!
//! Times are written in the organisation's zone with its offset, so that a
//! tool grouping events by day groups them by the organisation's days; each
//! event carries its touchpoint's name beside its code (the activity), and
//! its place in its case, so that events at the same time keep their order
//! through a tool that sorts by time.

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};

/// One event: case = journey, activity = touchpoint code.
pub struct Event<'a> {
    pub case_id: &'a str,
    pub activity: &'a str,
    /// The touchpoint's display name.
    pub activity_name: &'a str,
    pub time: DateTime<Utc>,
    /// The organisation's offset from UTC at `time`.
    pub offset: FixedOffset,
    /// The event's place in its case, from 1.
    pub sequence: u64,
    pub resource: Option<&'a str>,
}

fn timestamp(time: DateTime<Utc>, offset: FixedOffset) -> String {
    time.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// The offset of `seconds` east of UTC; UTC itself for one no zone has.
pub fn utc_offset(seconds: i32) -> FixedOffset {
    FixedOffset::east_opt(seconds).unwrap_or(Utc.fix())
}

/// Numbers the events of each case, in the order they come (a log comes
/// case by case).
#[derive(Debug, Default)]
pub struct CaseSequence {
    case: String,
    next: u64,
}

impl CaseSequence {
    /// The place of the next event, of case `case`.
    pub fn next(&mut self, case: &str) -> u64 {
        if self.case != case || self.next == 0 {
            case.clone_into(&mut self.case);
            self.next = 0;
        }
        self.next += 1;
        self.next
    }
}

/// A CSV event log being written: RFC 4180 quoting, by the csv crate.
pub struct CsvLog {
    writer: csv::Writer<Vec<u8>>,
}

impl Default for CsvLog {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvLog {
    /// A log holding its header line.
    pub fn new() -> Self {
        let mut log = Self {
            writer: Self::writer(),
        };
        log.write([
            "case_id",
            "activity",
            "timestamp",
            "resource",
            "activity_name",
            "sequence",
        ]);
        log
    }

    fn writer() -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::with_capacity(64 * 1024))
    }

    pub fn event(&mut self, event: &Event<'_>) {
        let time = timestamp(event.time, event.offset);
        self.write([
            event.case_id,
            event.activity,
            &time,
            event.resource.unwrap_or(""),
            event.activity_name,
            &event.sequence.to_string(),
        ]);
    }

    fn write(&mut self, fields: [&str; 6]) {
        // Writing to a Vec cannot fail.
        let _ = self.writer.write_record(fields);
    }

    /// How many bytes are written and not taken yet (give or take the
    /// writer's own buffer).
    pub fn len(&self) -> usize {
        self.writer.get_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What is written so far, the log left empty.
    pub fn take(&mut self) -> Vec<u8> {
        // A Vec takes every write, so flushing into it cannot fail.
        std::mem::replace(&mut self.writer, Self::writer())
            .into_inner()
            .unwrap_or_default()
    }
}

/// An XES event log being written: a trace per case, the events of a case
/// given one after another.
pub struct XesLog {
    out: String,
    /// The case of the open trace.
    trace: Option<String>,
}

impl Default for XesLog {
    fn default() -> Self {
        Self::new()
    }
}

impl XesLog {
    /// A log holding its header.
    pub fn new() -> Self {
        Self {
            out: XES_HEADER.to_owned(),
            trace: None,
        }
    }

    pub fn event(&mut self, event: &Event<'_>) {
        if self.trace.as_deref() != Some(event.case_id) {
            if self.trace.is_some() {
                self.out.push_str(XES_TRACE_END);
            }
            xes_trace_start(event.case_id, &mut self.out);
            self.trace = Some(event.case_id.to_owned());
        }
        xes_event(event, &mut self.out);
    }

    /// How many bytes are written and not taken yet.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// What is written so far, the log left empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out).into_bytes()
    }

    /// The rest of the log with its end.
    pub fn finish(mut self) -> Vec<u8> {
        if self.trace.is_some() {
            self.out.push_str(XES_TRACE_END);
        }
        self.out.push_str(XES_FOOTER);
        self.out.into_bytes()
    }
}

const XES_HEADER: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<log xes.version=\"1849-2016\" xes.features=\"nested-attributes\" ",
    "xmlns=\"http://www.xes-standard.org/\">\n",
    "  <extension name=\"Concept\" prefix=\"concept\" ",
    "uri=\"http://www.xes-standard.org/concept.xesext\"/>\n",
    "  <extension name=\"Time\" prefix=\"time\" ",
    "uri=\"http://www.xes-standard.org/time.xesext\"/>\n",
    "  <extension name=\"Organizational\" prefix=\"org\" ",
    "uri=\"http://www.xes-standard.org/org.xesext\"/>\n",
    "  <global scope=\"trace\"><string key=\"concept:name\" value=\"\"/></global>\n",
    "  <global scope=\"event\"><string key=\"concept:name\" value=\"\"/>",
    "<date key=\"time:timestamp\" value=\"1970-01-01T00:00:00.000+00:00\"/></global>\n",
);

const XES_FOOTER: &str = "</log>\n";

/// `value` escaped for an XML attribute.
fn xml_attribute(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' => escaped.push_str("&#9;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn xes_trace_start(case_id: &str, out: &mut String) {
    out.push_str("  <trace>\n    <string key=\"concept:name\" value=\"");
    out.push_str(&xml_attribute(case_id));
    out.push_str("\"/>\n");
}

const XES_TRACE_END: &str = "  </trace>\n";

fn xes_event(event: &Event<'_>, out: &mut String) {
    out.push_str("    <event>\n      <string key=\"concept:name\" value=\"");
    out.push_str(&xml_attribute(event.activity));
    out.push_str("\"/>\n      <date key=\"time:timestamp\" value=\"");
    out.push_str(&timestamp(event.time, event.offset));
    out.push_str("\"/>\n      <string key=\"activity_name\" value=\"");
    out.push_str(&xml_attribute(event.activity_name));
    out.push_str("\"/>\n      <int key=\"sequence\" value=\"");
    out.push_str(&event.sequence.to_string());
    out.push_str("\"/>\n");
    if let Some(resource) = event.resource {
        out.push_str("      <string key=\"org:resource\" value=\"");
        out.push_str(&xml_attribute(resource));
        out.push_str("\"/>\n");
    }
    out.push_str("    </event>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(case_id: &'a str, resource: Option<&'a str>) -> Event<'a> {
        Event {
            case_id,
            activity: "desk",
            activity_name: "Front desk",
            time: DateTime::from_timestamp(1_780_304_400, 123_000).unwrap(),
            offset: FixedOffset::east_opt(0).unwrap(),
            sequence: 1,
            resource,
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut log = CsvLog::new();
        log.event(&event("J1", Some("kim")));
        log.event(&event("a,\"b\"", None));
        let first = log.take();
        log.event(&event("line\nbreak", Some("")));
        let second = log.take();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "case_id,activity,timestamp,resource,activity_name,sequence\n\
             J1,desk,2026-06-01T09:00:00.000123+00:00,kim,Front desk,1\n\
             \"a,\"\"b\"\"\",desk,2026-06-01T09:00:00.000123+00:00,,Front desk,1\n"
        );
        assert_eq!(
            String::from_utf8(second).unwrap(),
            "\"line\nbreak\",desk,2026-06-01T09:00:00.000123+00:00,,Front desk,1\n"
        );
        assert!(log.is_empty());
    }

    #[test]
    fn xes_escapes_attribute_values() {
        let mut out = String::new();
        xes_trace_start("<J&1>", &mut out);
        xes_event(&event("x", Some("\"kim\"")), &mut out);
        assert!(out.contains("value=\"&lt;J&amp;1&gt;\""), "{out}");
        assert!(out.contains("value=\"&quot;kim&quot;\""), "{out}");
        assert!(
            out.contains(
                "<date key=\"time:timestamp\" value=\"2026-06-01T09:00:00.000123+00:00\"/>"
            )
        );
        assert!(out.contains("<string key=\"activity_name\" value=\"Front desk\"/>"));
        assert!(out.contains("<int key=\"sequence\" value=\"1\"/>"));
    }

    #[test]
    fn times_carry_the_organisations_offset_and_cases_number_their_events() {
        let seoul = FixedOffset::east_opt(9 * 3600).unwrap();
        let time = DateTime::from_timestamp(1_780_351_200, 0).unwrap();
        assert_eq!(timestamp(time, seoul), "2026-06-02T07:00:00.000000+09:00");
        let mut sequence = CaseSequence::default();
        let places: Vec<u64> = ["a", "a", "b", "a", "a"]
            .iter()
            .map(|case| sequence.next(case))
            .collect();
        assert_eq!(places, [1, 2, 1, 1, 2]);
        let mut first = CaseSequence::default();
        assert_eq!(first.next(""), 1);
    }
}
