//! Event logs for process-mining tools in IEEE XES, written an event at a
//! time so that an export never holds the whole log. (The CSV form is
//! written by PostgreSQL's COPY: see store::analysis::event_log_csv.)

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

pub const XES_HEADER: &str = concat!(
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

pub const XES_FOOTER: &str = "</log>\n";

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

pub fn xes_trace_start(case_id: &str, out: &mut String) {
    out.push_str("  <trace>\n    <string key=\"concept:name\" value=\"");
    out.push_str(&xml_attribute(case_id));
    out.push_str("\"/>\n");
}

pub const XES_TRACE_END: &str = "  </trace>\n";

pub fn xes_event(event: &Event<'_>, out: &mut String) {
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
