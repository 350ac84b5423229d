//! One data row → member, not a member, or rejected. Shared by the delimited
//! and the spreadsheet readers so both judge rows by the same rules.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;

use super::columns::Field;
use super::dates::{DateError, parse_date_cell};
use crate::Email;

/// A club member as the AMS file describes them. Text fields are trimmed and
/// keep their original case; blank cells are `None`.
///
/// `Debug` is derived: it prints names, addresses and phone numbers, so never
/// log a `RosterRow` (log `email.log_token()` and `line` instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// Physical line of the row's start in the file (header = 1), or the
    /// sheet row number (1-based) for spreadsheets.
    pub line: u64,
    pub member_id: Option<String>,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// The club tier as the AMS names it (`Gold Club`); matched to the
    /// property's enabled tiers later, so case is kept.
    pub tier: Option<String>,
    pub status: Option<String>,
    pub join_date: Option<NaiveDate>,
    /// Only ever a date after `as_of` here: an earlier one makes the row a
    /// [`RowOutcome::NotMember`].
    pub quit_date: Option<NaiveDate>,
    pub wine_preference: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

/// How much of a member row the readers copy out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Detail {
    /// Every recognised column.
    #[default]
    Full,
    /// Only what a club roster keeps and decides on: member id, email, tier,
    /// status and the dates (all still validated). Names, phones, addresses
    /// and preferences stay in the file and are `None` here: an import never
    /// holds them in memory, and their copies were most of the parser's
    /// allocations.
    Roster,
    /// What [`Detail::Roster`] keeps, plus the contact a booking is
    /// prefilled with: first and last name and phone. Addresses and
    /// preferences stay in the file. What a roster import reads.
    Contact,
}

/// Why a well-formed row is not a current member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMemberReason {
    /// The status column holds one of the leaving words; this is that word,
    /// normalised (`"cancelled"`, `"quit"`, ...), never the cell as written.
    Status(&'static str),
    /// The quit/cancel date is on or before the import's `as_of` date.
    QuitDate,
}

impl fmt::Display for NotMemberReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotMemberReason::Status(word) => write!(f, "status is {word}"),
            NotMemberReason::QuitDate => f.write_str("quit date is on or before the import date"),
        }
    }
}

/// What one data row of a roster file amounts to.
#[derive(Debug)]
pub enum RowOutcome {
    /// A current member: valid email, not cancelled or quit as of `as_of`.
    /// Boxed: a row is large, and moving it through the iterator by value
    /// costs more than the allocation.
    Member(Box<RosterRow>),
    /// A row for someone who left the club; not an error, not in the roster.
    NotMember { line: u64, reason: NotMemberReason },
    /// A row that cannot be used. `column` is the canonical field name
    /// ([`Field::name`]) or `"fields"` for a wrong field count; `reason` says
    /// what was wrong and never contains the cell value (it may be personal
    /// data), so rejects can go into reports and logs as they are.
    Reject {
        line: u64,
        column: &'static str,
        reason: String,
    },
    /// Reading the input failed part-way (network, storage). The iterator
    /// ends after this item; the rows seen so far are not a whole roster.
    Failed(std::io::Error),
}

impl RowOutcome {
    /// The row's line, if it is a row (a `Failed` read has none).
    pub fn line(&self) -> Option<u64> {
        match self {
            RowOutcome::Member(r) => Some(r.line),
            RowOutcome::NotMember { line, .. } | RowOutcome::Reject { line, .. } => Some(*line),
            RowOutcome::Failed(_) => None,
        }
    }
}

/// Running totals of a parse, readable at any time and final after the
/// iterator returned `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Data rows judged (members + not members + rejects); excludes the
    /// header and blank rows. Zero for a header-only file.
    pub rows: u64,
    pub members: u64,
    pub not_members: u64,
    pub rejects: u64,
    /// Rows whose cells were all blank (`,,,,` lines Excel leaves behind);
    /// skipped without an outcome.
    pub blank_rows: u64,
}

impl Counts {
    pub(crate) fn record(&mut self, outcome: &RowOutcome) {
        match outcome {
            RowOutcome::Member(_) => self.members += 1,
            RowOutcome::NotMember { .. } => self.not_members += 1,
            RowOutcome::Reject { .. } => self.rejects += 1,
            RowOutcome::Failed(_) => return,
        }
        self.rows += 1;
    }
}

/// A date-bearing cell as a reader sees it: text to parse, or a date the
/// spreadsheet already typed.
pub(crate) enum DateCell<'a> {
    Text(Cow<'a, str>),
    Date(NaiveDate),
    /// A cell that cannot be a date (a spreadsheet error value, a number out
    /// of Excel's date range).
    Invalid,
}

/// Read access to the cells of the current row.
pub(crate) trait RowSource {
    /// The trimmed text of `field`'s cell; `None` when the file has no such
    /// column or the cell is blank.
    fn text(&self, field: Field) -> Option<Cow<'_, str>>;

    /// The date cell of `field`; `None` as for [`RowSource::text`].
    fn date_cell(&self, field: Field) -> Option<DateCell<'_>>;
}

/// Status words meaning the person left the club (compared per word,
/// ASCII case-insensitively, so `Cancelled - moved` counts and `Active`
/// does not match `inactive`).
const LEAVING_WORDS: [(&str, &str); 7] = [
    ("cancelled", "cancelled"),
    ("canceled", "cancelled"),
    ("quit", "quit"),
    ("inactive", "inactive"),
    ("terminated", "terminated"),
    ("expired", "expired"),
    ("lapsed", "lapsed"),
];

fn leaving_word(status: &str) -> Option<&'static str> {
    status
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .find_map(|w| {
            LEAVING_WORDS
                .iter()
                .find(|(word, _)| w.eq_ignore_ascii_case(word))
                .map(|(_, canonical)| *canonical)
        })
}

fn reject(line: u64, field: Field, reason: impl Into<String>) -> RowOutcome {
    RowOutcome::Reject {
        line,
        column: field.name(),
        reason: reason.into(),
    }
}

fn date<S: RowSource>(src: &S, field: Field) -> Result<Option<NaiveDate>, DateError> {
    match src.date_cell(field) {
        None => Ok(None),
        Some(DateCell::Date(d)) => Ok(Some(d)),
        Some(DateCell::Text(t)) => parse_date_cell(&t),
        Some(DateCell::Invalid) => Err(DateError::Unrecognised),
    }
}

/// Judges one row.
///
/// Order matters and is chosen so reject counts measure damage to the
/// roster: leaving rows are settled first (status, then quit date) and are
/// not rejected for a missing email or a bad birth date, since they would not
/// enter the roster anyway; a quit date that cannot be read is a reject
/// because membership cannot be decided without it.
#[inline]
pub(crate) fn classify<S: RowSource>(
    src: &S,
    line: u64,
    as_of: NaiveDate,
    detail: Detail,
) -> RowOutcome {
    let status = src.text(Field::Status);
    if let Some(word) = status.as_deref().and_then(leaving_word) {
        return RowOutcome::NotMember {
            line,
            reason: NotMemberReason::Status(word),
        };
    }
    let quit_date = match date(src, Field::QuitDate) {
        Ok(d) => d,
        Err(e) => return reject(line, Field::QuitDate, e.reason()),
    };
    if quit_date.is_some_and(|q| q <= as_of) {
        return RowOutcome::NotMember {
            line,
            reason: NotMemberReason::QuitDate,
        };
    }
    let email = match src.text(Field::Email) {
        None => return reject(line, Field::Email, "is missing"),
        // ValidationError's reasons describe the defect, never the value.
        Some(raw) => match Email::parse(&raw) {
            Ok(e) => e,
            Err(e) => return reject(line, Field::Email, e.reason),
        },
    };
    let join_date = match date(src, Field::JoinDate) {
        Ok(d) => d,
        Err(e) => return reject(line, Field::JoinDate, e.reason()),
    };
    let birth_date = match date(src, Field::BirthDate) {
        Ok(d) => d,
        Err(e) => return reject(line, Field::BirthDate, e.reason()),
    };
    let owned = |f: Field| src.text(f).map(Cow::into_owned);
    let profile = |f: Field| match detail {
        Detail::Full => owned(f),
        Detail::Roster | Detail::Contact => None,
    };
    let contact = |f: Field| match detail {
        Detail::Full | Detail::Contact => owned(f),
        Detail::Roster => None,
    };
    RowOutcome::Member(Box::new(RosterRow {
        line,
        member_id: owned(Field::MemberId),
        email,
        first_name: contact(Field::FirstName),
        last_name: contact(Field::LastName),
        phone: contact(Field::Phone),
        tier: owned(Field::Tier),
        status: status.map(Cow::into_owned),
        join_date,
        quit_date,
        wine_preference: profile(Field::WinePreference),
        birth_date,
        address1: profile(Field::Address1),
        address2: profile(Field::Address2),
        city: profile(Field::City),
        state: profile(Field::State),
        zip: profile(Field::Zip),
        country: profile(Field::Country),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_words_match_per_word_any_case() {
        assert_eq!(leaving_word("CANCELED"), Some("cancelled"));
        assert_eq!(leaving_word("Cancelled - moved away"), Some("cancelled"));
        assert_eq!(leaving_word("Club Quit"), Some("quit"));
        assert_eq!(leaving_word("inactive"), Some("inactive"));
        assert_eq!(leaving_word("Lapsed"), Some("lapsed"));
        assert_eq!(leaving_word("Expired"), Some("expired"));
        assert_eq!(leaving_word("terminated"), Some("terminated"));
        assert_eq!(leaving_word("Active"), None);
        assert_eq!(leaving_word("On Hold"), None);
        assert_eq!(leaving_word("Quite active"), None);
    }
}
