//! Event logs for process-mining tools, as CSV and IEEE XES, written an
//! event at a time so that an export never holds the whole log.

use chrono::{DateTime, SecondsFormat, Utc};

/// One event: case = journey, activity = touchpoint code.
pub struct Event<'a> {
    pub case_id: &'a str,
    pub activity: &'a str,
    pub time: DateTime<Utc>,
    pub resource: Option<&'a str>,
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
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
        log.write(["case_id", "activity", "timestamp", "resource"]);
        log
    }

    fn writer() -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::with_capacity(64 * 1024))
    }

    pub fn event(&mut self, event: &Event<'_>) {
        let time = timestamp(event.time);
        self.write([
            event.case_id,
            event.activity,
            &time,
            event.resource.unwrap_or(""),
        ]);
    }

    fn write(&mut self, fields: [&str; 4]) {
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
    out.push_str(&timestamp(event.time));
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
            time: DateTime::from_timestamp(1_780_304_400, 123_000).unwrap(),
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
            "case_id,activity,timestamp,resource\n\
             J1,desk,2026-06-01T09:00:00.000123Z,kim\n\
             \"a,\"\"b\"\"\",desk,2026-06-01T09:00:00.000123Z,\n"
        );
        assert_eq!(
            String::from_utf8(second).unwrap(),
            "\"line\nbreak\",desk,2026-06-01T09:00:00.000123Z,\n"
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
            out.contains("<date key=\"time:timestamp\" value=\"2026-06-01T09:00:00.000123Z\"/>")
        );
    }
}
