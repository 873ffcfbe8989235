//! Syslog messages (RFC 5424, RFC 3164 and the short `<PRI>tag[pid]: msg`
//! form) to `system_logs` rows, and the framing of a TCP stream (RFC 6587
//! octet counting or newlines, detected per connection).

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::Utc;
use logpulse_model::ingest::{Import, LogFields, Parsed, ROW_BYTES_MAX};
use serde_json::{json, Map, Value as Json};
use syslog_loose::{parse_message_with_year_tz, Message, ProcId, Variant};

use super::meta::{Members, Val};
use super::severity;

/// Largest syslog message taken: the row limit.
pub const MESSAGE_BYTES_MAX: usize = ROW_BYTES_MAX;

/// Appends one message's row (or quarantine row), borrowing its text
/// from `bytes` when it is valid UTF-8. `now` stands in for a missing
/// timestamp and `peer` for a missing host name; RFC 3164 times (which have
/// no year) get `year`.
pub fn push<'a>(
    bytes: &'a [u8],
    peer: IpAddr,
    now: u32,
    year: i32,
    import: &Import,
    out: &mut Parsed<'a>,
) {
    let _ = match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(text) => {
            let text = text.trim_end_matches(['\0', '\n', '\r']);
            let f = fields(&parse(text, year), peer, now);
            out.push_log(f, Vec::new(), || raw(text, peer), import)
        }
        Cow::Owned(text) => {
            let text = text.trim_end_matches(['\0', '\n', '\r']);
            let f = owned(fields(&parse(text, year), peer, now));
            out.push_log(f, Vec::new(), || raw(text, peer), import)
        }
    };
}

/// A quarantined message's raw text: the message and who sent it.
fn raw(text: &str, peer: IpAddr) -> String {
    json!({"message": text, "peer": peer.to_string()}).to_string()
}

/// The fields with every text copied.
fn owned(f: LogFields<'_>) -> LogFields<'static> {
    let o = |c: Option<Cow<str>>| c.map(|c| Cow::Owned(c.into_owned()));
    LogFields {
        timestamp: f.timestamp,
        service: o(f.service),
        severity: o(f.severity),
        message: o(f.message),
        server_id: o(f.server_id),
        error_code: o(f.error_code),
        resource_id: o(f.resource_id),
        metadata: o(f.metadata),
    }
}

/// RFC 5424, else RFC 3164 (times without a year get `year`), else the short form.
fn parse(text: &str, year: i32) -> Message<&str> {
    let mut m = parse_message_with_year_tz(text, |_| year, Some(Utc), Variant::Either);
    if m.facility.is_none() {
        short_form(&mut m);
    }
    m
}

fn fields<'t>(m: &Message<&'t str>, peer: IpAddr, now: u32) -> LogFields<'t> {
    let (app, procid) = tag(m);
    let timestamp = match m.timestamp {
        None => Ok(now),
        Some(t) => logpulse_model::time::from_unix_f64(t.timestamp() as f64),
    };
    let mut meta = Members::default();
    if let Some(f) = m.facility {
        meta.push("facility", Val::Str(f.as_str()));
    }
    if let Some(p) = &procid {
        meta.push("procid", Val::Str(p));
    }
    if let Some(id) = m.msgid {
        meta.push("msgid", Val::Str(id));
    }
    if !m.structured_data.is_empty() {
        let sd: Map<String, Json> = m
            .structured_data
            .iter()
            .map(|e| {
                let params = e
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), Json::String(v.to_string())));
                (e.id.to_string(), Json::Object(params.collect()))
            })
            .collect();
        meta.push("structured_data", Val::Json(Json::Object(sd)));
    }
    LogFields {
        timestamp: Some(timestamp),
        service: app.map(Cow::Borrowed),
        severity: Some(Cow::Borrowed(match m.severity {
            Some(s) => severity::from_syslog(s as u8),
            None => severity::DEFAULT,
        })),
        message: Some(Cow::Borrowed(m.msg)),
        server_id: Some(
            m.hostname
                .map_or_else(|| Cow::Owned(peer.to_string()), Cow::Borrowed),
        ),
        metadata: meta.text().map(Cow::Owned),
        ..Default::default()
    }
}

/// `<PRI>tag[pid]: msg` or `<PRI>tag: msg` (no time, no host), which
/// Python's `SysLogHandler` and many small senders send, and which the
/// RFC parsers leave whole in `msg`; `<PRI>msg` without a tag keeps its PRI.
fn short_form(m: &mut Message<&str>) {
    let Some(rest) = m.msg.strip_prefix('<') else {
        return;
    };
    let Some((pri, body)) = rest.split_once('>') else {
        return;
    };
    let Some(pri) = pri
        .parse::<u8>()
        .ok()
        .filter(|p| pri.len() <= 3 && *p < 192)
    else {
        return;
    };
    (m.facility, m.severity) = syslog_loose::decompose_pri(pri);
    m.msg = body;
    let Some((tag, msg)) = body.split_once(": ") else {
        return;
    };
    let tag_ok = |t: &str| !t.is_empty() && t.len() <= 64 && !t.contains(char::is_whitespace);
    if tag_ok(tag) {
        let (name, pid) = match tag.strip_suffix(']').and_then(|t| t.split_once('[')) {
            Some((name, pid)) => (name, Some(pid)),
            None => (tag, None),
        };
        if tag_ok(name) {
            m.appname = Some(name);
            m.procid = pid.map(ProcId::from);
            m.msg = msg;
        }
    }
}

/// The APP-NAME (without a `[pid]`), and the PROCID.
fn tag<'t>(m: &Message<&'t str>) -> (Option<&'t str>, Option<Cow<'t, str>>) {
    let procid = m.procid.as_ref().map(|p| match p {
        ProcId::PID(n) => Cow::Owned(n.to_string()),
        ProcId::Name(s) => Cow::Borrowed(*s),
    });
    let app = m.appname.map(|a| a.trim_end_matches(':'));
    match app.and_then(|a| a.split_once('[')) {
        Some((name, pid)) => (
            Some(name),
            procid.or_else(|| Some(Cow::Borrowed(pid.trim_end_matches(']')))),
        ),
        None => (app.filter(|a| !a.is_empty()), procid),
    }
}

/// Splits a TCP stream into messages.
#[derive(Debug, Default)]
pub struct Framer {
    /// Octet counting, decided by the connection's first byte (a digit).
    octets: Option<bool>,
}

/// A frame found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A message at `start..end`; the next frame starts at `next`.
    Message {
        start: usize,
        end: usize,
        next: usize,
    },
    /// More bytes are needed.
    Incomplete,
    /// The stream is not syslog: the connection should be closed.
    Invalid(String),
}

impl Framer {
    /// The next frame of `buf[from..]`.
    pub fn next(&mut self, buf: &[u8], from: usize) -> Frame {
        let rest = &buf[from..];
        let Some(&first) = rest.first() else {
            return Frame::Incomplete;
        };
        let octets = *self.octets.get_or_insert(first.is_ascii_digit());
        if !octets {
            // Newlines end messages, and so do NULs (Python's SysLogHandler).
            return match memchr::memchr2(b'\n', b'\0', rest) {
                Some(i) => Frame::Message {
                    start: from,
                    end: from + i,
                    next: from + i + 1,
                },
                None if rest.len() > MESSAGE_BYTES_MAX => Frame::Message {
                    start: from,
                    end: from + MESSAGE_BYTES_MAX,
                    next: from + MESSAGE_BYTES_MAX,
                },
                None => Frame::Incomplete,
            };
        }
        // Blank lines between octet-counted frames are tolerated.
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let rest = &rest[skip..];
        let Some(sp) = memchr::memchr(b' ', &rest[..rest.len().min(12)]) else {
            return if rest.len() >= 12 || rest.iter().any(|b| !b.is_ascii_digit()) {
                Frame::Invalid("octet-counted frame without a length".into())
            } else {
                Frame::Incomplete
            };
        };
        let len = match std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) if n <= MESSAGE_BYTES_MAX => n,
            _ => {
                return Frame::Invalid(format!(
                    "bad frame length {:?}",
                    String::from_utf8_lossy(&rest[..sp])
                ))
            }
        };
        let start = from + skip + sp + 1;
        if buf.len() < start + len {
            return Frame::Incomplete;
        }
        Frame::Message {
            start,
            end: start + len,
            next: start + len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> LogFields<'_> {
        fields(
            &parse(line, 2026),
            "10.1.2.3".parse().unwrap(),
            1_700_000_000,
        )
    }

    #[test]
    fn rfc5424_rfc3164_and_the_short_form() {
        let f = one(
            "<11>1 2026-03-01T10:20:30.5+01:00 web1 billing 4242 ID7 [ex@1 k=\"v\"] card declined",
        );
        assert_eq!(f.timestamp, Some(Ok(1_772_356_830)));
        assert_eq!(f.service.as_deref(), Some("billing"));
        assert_eq!(f.severity.as_deref(), Some("ERROR"));
        assert_eq!(f.server_id.as_deref(), Some("web1"));
        assert_eq!(f.message.as_deref(), Some("card declined"));
        let meta: Json = serde_json::from_str(f.metadata.as_deref().unwrap()).unwrap();
        assert_eq!(
            meta,
            json!({"facility":"user","procid":"4242","msgid":"ID7","structured_data":{"ex@1":{"k":"v"}}})
        );
        let f = one("<28>Mar  1 10:20:30 db2 postgres[77]: slow query");
        assert_eq!(f.service.as_deref(), Some("postgres"));
        assert_eq!(f.severity.as_deref(), Some("WARN"));
        assert_eq!(f.server_id.as_deref(), Some("db2"));
        assert_eq!(f.timestamp, Some(Ok(1_772_360_430)));
        assert_eq!(f.message.as_deref(), Some("slow query"));
        let f = one("<15>cron[9]: job done");
        assert_eq!(f.service.as_deref(), Some("cron"));
        assert_eq!(f.severity.as_deref(), Some("DEBUG"));
        assert_eq!(f.server_id.as_deref(), Some("10.1.2.3"));
        assert_eq!(f.timestamp, Some(Ok(1_700_000_000)));
        assert_eq!(f.message.as_deref(), Some("job done"));
    }

    #[test]
    fn framing_is_detected_per_connection() {
        let mut f = Framer::default();
        let buf = b"5 hello3 abc\n2 x";
        assert_eq!(
            f.next(buf, 0),
            Frame::Message {
                start: 2,
                end: 7,
                next: 7
            }
        );
        assert_eq!(
            f.next(buf, 7),
            Frame::Message {
                start: 9,
                end: 12,
                next: 12
            }
        );
        assert_eq!(f.next(buf, 12), Frame::Incomplete);
        let mut f = Framer::default();
        let buf = b"<13>a\n<13>b\0<13>c";
        assert_eq!(
            f.next(buf, 0),
            Frame::Message {
                start: 0,
                end: 5,
                next: 6
            }
        );
        assert_eq!(
            f.next(buf, 6),
            Frame::Message {
                start: 6,
                end: 11,
                next: 12
            }
        );
        assert_eq!(f.next(buf, 12), Frame::Incomplete);
        let mut f = Framer::default();
        assert!(matches!(f.next(b"9999999999999 x", 0), Frame::Invalid(_)));
    }
}
