//! CSV as GuestHub writes it — the loyalty export file and the settlement
//! CSV — so the rules are the same in both:
//!
//! - quoting by RFC 4180 where a field needs it (the `csv` crate's writer);
//! - a record is one physical line: control characters (NUL, CR, LF, tab,
//!   the other C0 controls and DEL) in text are written as a space;
//! - text that a spreadsheet would run as a formula — starting with `=`,
//!   `+`, `-`, `@`, tab or CR — is prefixed with a single quote `'` (the
//!   OWASP rule against CSV injection). A reader drops one leading `'`
//!   followed by one of those characters to get the text back.
//!
//! Only [`text`] fields are neutralised: values GuestHub formats itself
//! (amounts, which may be negative, dates, counts) are written as they are.

use std::borrow::Cow;

/// A CSV writer with `terminator` as the line end and quoting where needed.
/// Records may differ in length (a file's header and trailer lines).
pub fn writer<W: std::io::Write>(out: W, terminator: csv::Terminator) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .flexible(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(terminator)
        .from_writer(out)
}

/// Whether a field starting with `c` would be read as a formula.
fn formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Text from people or partner systems (names, emails, references, ids),
/// made safe for a CSV field: see the module documentation.
pub fn text(s: &str) -> Cow<'_, str> {
    let prefix = s.chars().next().is_some_and(formula_start);
    let controls = s.chars().any(char::is_control);
    if !prefix && !controls {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 1);
    if prefix {
        out.push('\'');
    }
    out.extend(s.chars().map(|c| {
        if c.is_ascii_control() || c == '\u{7f}' {
            ' '
        } else {
            c
        }
    }));
    // Other control characters (C1) are no line breaks: kept as they are.
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_formulas_and_line_breaks() {
        assert_eq!(text("Anna"), "Anna");
        assert!(matches!(text("Anna"), Cow::Borrowed(_)));
        assert_eq!(text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-2"), "'-2");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("\tx"), "' x");
        assert_eq!(text("\r\nx"), "'  x");
        assert_eq!(text("a\r\nb\0c\u{7f}"), "a  b c ");
        assert_eq!(text("Anne-Marie"), "Anne-Marie");
        assert_eq!(text(""), "");
    }

    #[test]
    fn quotes_where_needed() {
        let mut w = writer(Vec::new(), csv::Terminator::CRLF);
        w.write_record([text("a,b").as_ref(), &text("say \"hi\""), &text("x\ny")])
            .unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",x y\r\n");
    }
}
