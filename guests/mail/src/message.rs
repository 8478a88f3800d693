//! What the inbox shows of a message: its From, Subject and Date header
//! fields, read defensively from the raw bytes (only the header section,
//! at most [`HEADER_LIMIT`] bytes of it; folded lines joined; anything
//! missing shown empty), and text made safe for the console: control
//! characters (escape sequences that could redraw the terminal or fake
//! Duet's own lines) become `?`, and lines are cut to a width.

use alloc::string::String;

/// How much of a message's start is searched for its header fields.
pub const HEADER_LIMIT: usize = 16 << 10;
/// The most characters kept of one field.
const FIELD_LIMIT: usize = 200;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub from: String,
    pub subject: String,
    pub date: String,
}

impl Summary {
    pub fn parse(raw: &[u8]) -> Summary {
        let head = &raw[..raw.len().min(HEADER_LIMIT)];
        let mut summary = Summary::default();
        let mut current: Option<&mut String> = None;
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                // A folded line continues the field before it.
                if let Some(field) = current.as_deref_mut() {
                    append(field, line);
                }
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                current = None;
                continue;
            };
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            current = match name.to_ascii_lowercase().as_slice() {
                b"from" => Some(&mut summary.from),
                b"subject" => Some(&mut summary.subject),
                b"date" => Some(&mut summary.date),
                _ => None,
            };
            if let Some(field) = current.as_deref_mut() {
                field.clear();
                append(field, value);
            }
        }
        summary
    }
}

fn append(field: &mut String, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !field.is_empty() {
        field.push(' ');
    }
    for c in text.chars() {
        if field.chars().count() >= FIELD_LIMIT {
            return;
        }
        field.push(c);
    }
}

/// The addresses of the To and Cc fields: each `<addr>`, or a bare
/// `addr` between commas; at most 100. Group syntax and quoted commas in
/// display names are not understood (a composed draft has neither).
pub fn recipients(raw: &[u8]) -> alloc::vec::Vec<String> {
    let head = &raw[..raw.len().min(HEADER_LIMIT)];
    let mut found = alloc::vec::Vec::new();
    let mut field: Option<String> = None;
    let mut fields = alloc::vec::Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(f) = field.as_mut() {
                f.push_str(&text);
            }
            continue;
        }
        fields.extend(field.take());
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            if name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("cc") {
                field = Some(String::from(value));
            }
        }
    }
    fields.extend(field);
    for value in fields {
        for part in value.split(',') {
            let address = match (part.find('<'), part.rfind('>')) {
                (Some(a), Some(b)) if a < b => &part[a + 1..b],
                _ => part,
            };
            let address = address.trim();
            if !address.is_empty() && found.len() < 100 {
                found.push(String::from(address));
            }
        }
    }
    found
}

/// The Message-ID field's value (`<...>`, as written), if the header
/// section has one that is printable ASCII without spaces, at most 250
/// bytes: what the outbox's reconciliation searches the server for.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let head = &raw[..raw.len().min(HEADER_LIMIT)];
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if !line[..colon].eq_ignore_ascii_case(b"message-id") {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let ok = value.len() <= 250
            && value.starts_with(b"<")
            && value.ends_with(b">")
            && value.iter().all(|b| (0x21..0x7f).contains(b));
        return ok.then(|| String::from_utf8_lossy(value).into_owned());
    }
    None
}

/// `text` as one console line: control characters replaced, at most
/// `width` characters.
pub fn safe_line(text: &str, width: usize) -> String {
    text.chars().take(width).map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_unfolded_and_the_body_ignored() {
        let raw = b"Received: from x\r\nFROM: Alice <alice@example.com>\r\nSubject: Quarterly\r\n\tresults\r\n\
                    Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nX-Other: 1\r\n continued\r\n\r\nSubject: not a header\r\n";
        let summary = Summary::parse(raw);
        assert_eq!(summary.from, "Alice <alice@example.com>");
        assert_eq!(summary.subject, "Quarterly results");
        assert_eq!(summary.date, "Sat, 05 Dec 2026 10:00:00 +0000");
    }

    #[test]
    fn missing_broken_or_huge_headers_give_what_they_can() {
        assert_eq!(Summary::parse(b""), Summary::default());
        assert_eq!(Summary::parse(b"no colon here\n\xff\xfe: x\n").subject, "");
        let long = [b"Subject: ".as_slice(), &[b'a'; 100_000]].concat();
        assert_eq!(Summary::parse(&long).subject.len(), 200);
        let late = [&[b'X'; HEADER_LIMIT][..], b"\nSubject: late\n"].concat();
        assert_eq!(Summary::parse(&late).subject, "");
        assert_eq!(Summary::parse(b"Subject: caf\xc3\xa9 \xff\n").subject, "caf\u{e9} \u{fffd}");
    }

    #[test]
    fn recipients_come_from_to_and_cc() {
        let raw = b"To: Bob <bob@x.test>, carol@x.test\r\nSubject: a, b <c@d>\r\nCc: dan@x.test,\r\n <eve@x.test>\r\n\r\nTo: no@x.test\r\n";
        assert_eq!(recipients(raw), ["bob@x.test", "carol@x.test", "dan@x.test", "eve@x.test"]);
        assert!(recipients(b"Subject: none\r\n\r\n").is_empty());
    }

    #[test]
    fn the_message_id_is_read_from_the_header_only() {
        let raw = b"To: a@b\r\nMessage-ID: <12.ab@duet-mail>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id(raw).as_deref(), Some("<12.ab@duet-mail>"));
        assert_eq!(message_id(b"To: a@b\r\n\r\nMessage-ID: <body@x>\r\n"), None);
        assert_eq!(message_id(b"message-id:   <x y@z>\r\n"), None);
        assert_eq!(message_id(b"Message-Id: <\x1b@z>\r\n"), None);
        assert_eq!(message_id(b"Message-Id: no-brackets\r\n"), None);
    }

    #[test]
    fn console_lines_carry_no_control_characters() {
        assert_eq!(safe_line("a\x1b[2Jb\rc\u{9b}d", 80), "a?[2Jb?c?d");
        assert_eq!(safe_line("abcdef", 3), "abc");
    }
}
