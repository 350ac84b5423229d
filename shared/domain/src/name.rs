//! Names as people type them: a guest's, a member's, a voucher buyer's, a
//! property's or a partner's. Names end up in files other systems read
//! (the loyalty export, the PMS pickup feed), in listings an operator reads
//! in a terminal, and in spreadsheets; so a name never carries a control
//! character: no CR/LF or NUL (which split or cut a line), no C0/C1 control
//! or ANSI escape (which rewrite a terminal), no line or paragraph separator
//! and no bidirectional override (which reorder what is shown).

use crate::ValidationError;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Whether `c` may not appear in a name (or in any one-line text field).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Refuses text holding a character [`is_forbidden`] forbids, naming the
/// field.
pub fn one_line(field: &'static str, text: &str) -> Result<(), ValidationError> {
    match text.chars().find(|c| is_forbidden(*c)) {
        Some(c) => Err(ValidationError::new(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

/// A person's name as given: one line, at most [`MAX_NAME_CHARS`]
/// characters.
pub fn person_name(field: &'static str, text: &str) -> Result<(), ValidationError> {
    one_line(field, text)?;
    if text.trim().chars().count() > MAX_NAME_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line() {
        for ok in ["Ana López", "O'Brien-Smith", "李小龙", "Zoë 🦀", ""] {
            assert!(person_name("first_name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "Ana\nLopez",
            "Ana\r",
            "A\u{0}",
            "\u{1b}[31mred",
            "tab\there",
            "c1\u{85}",
            "\u{202e}gnp.exe",
            "line\u{2028}sep",
            "\u{7f}",
        ] {
            let e = person_name("first_name", bad).unwrap_err();
            assert_eq!(e.field, "first_name");
        }
        assert!(person_name("n", &"x".repeat(201)).is_err());
    }
}
