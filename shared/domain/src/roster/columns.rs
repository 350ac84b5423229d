//! Header row → column indices, matched once per file.
//!
//! Every AMS names its columns differently (`MemberID`, `Customer Number`,
//! `CUST_NO`, ...), so a header cell is normalised (ASCII case folded; spaces,
//! underscores, hyphens and dots dropped) and looked up in a fixed alias table.
//! The lookup happens once for the header; rows are then read by index.

/// A roster field we read. The discriminant indexes [`ColumnMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    MemberId,
    Email,
    FirstName,
    LastName,
    Phone,
    Tier,
    Status,
    JoinDate,
    QuitDate,
    WinePreference,
    Address1,
    Address2,
    City,
    State,
    Zip,
    Country,
    BirthDate,
}

impl Field {
    pub const ALL: [Field; 17] = [
        Field::MemberId,
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::Phone,
        Field::Tier,
        Field::Status,
        Field::JoinDate,
        Field::QuitDate,
        Field::WinePreference,
        Field::Address1,
        Field::Address2,
        Field::City,
        Field::State,
        Field::Zip,
        Field::Country,
        Field::BirthDate,
    ];

    /// The canonical name used in rejects and reports (never the header text
    /// of the file, which varies per AMS).
    pub fn name(self) -> &'static str {
        match self {
            Field::MemberId => "member_id",
            Field::Email => "email",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Phone => "phone",
            Field::Tier => "tier",
            Field::Status => "status",
            Field::JoinDate => "join_date",
            Field::QuitDate => "quit_date",
            Field::WinePreference => "wine_preference",
            Field::Address1 => "address1",
            Field::Address2 => "address2",
            Field::City => "city",
            Field::State => "state",
            Field::Zip => "zip",
            Field::Country => "country",
            Field::BirthDate => "birth_date",
        }
    }

    /// Normalised header spellings, most specific first: when a file has two
    /// columns for one field (`ClubDescr` and `ClubCode`), the earlier alias
    /// wins, whatever the column order.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::MemberId => &["memberid", "membernumber", "customernumber", "custno"],
            Field::Email => &["email", "emailaddress"],
            Field::FirstName => &["firstname"],
            Field::LastName => &["lastname"],
            Field::Phone => &["phone", "phonenumber"],
            Field::Tier => &["clubdescr", "club", "clubcode", "tier"],
            Field::Status => &["clubstatus", "status"],
            Field::JoinDate => &["joindate", "signupdate"],
            Field::QuitDate => &["quitdate", "canceldate"],
            Field::WinePreference => &["winepreference"],
            Field::Address1 => &["address1", "address"],
            Field::Address2 => &["address2"],
            Field::City => &["city"],
            Field::State => &["state"],
            Field::Zip => &["zip", "postalcode"],
            Field::Country => &["country"],
            Field::BirthDate => &["birthdate", "dob"],
        }
    }
}

/// Lower-cases ASCII and drops the separators people and systems put in
/// header names, so `E-mail`, `Member Number` and `CUST_NO` compare equal to
/// the aliases.
fn normalise(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.') && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Which column of the file holds each [`Field`], if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    /// `(column index, alias rank)` per field; the rank decides duplicates.
    slots: [Option<(usize, usize)>; Field::ALL.len()],
}

impl ColumnMap {
    /// Maps header cells to fields. Unknown columns are ignored.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut map = Self::default();
        for (idx, raw) in headers.into_iter().enumerate() {
            let key = normalise(raw);
            for field in Field::ALL {
                if let Some(rank) = field.aliases().iter().position(|a| *a == key) {
                    let slot = &mut map.slots[field as usize];
                    if slot.is_none_or(|(_, old)| rank < old) {
                        *slot = Some((idx, rank));
                    }
                }
            }
        }
        map
    }

    /// The column index of `field` in the file, if the file has it.
    #[inline]
    pub fn index(&self, field: Field) -> Option<usize> {
        self.slots[field as usize].map(|(i, _)| i)
    }

    /// The fields this file provides, in [`Field::ALL`] order (for reports).
    pub fn present(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| self.index(*f).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_match_case_and_separator_insensitively() {
        let m = ColumnMap::from_headers([
            "Member Number",
            "E-mail",
            "first_name",
            "LAST NAME",
            "Postal Code",
            "DOB",
            "Something Else",
        ]);
        assert_eq!(m.index(Field::MemberId), Some(0));
        assert_eq!(m.index(Field::Email), Some(1));
        assert_eq!(m.index(Field::FirstName), Some(2));
        assert_eq!(m.index(Field::LastName), Some(3));
        assert_eq!(m.index(Field::Zip), Some(4));
        assert_eq!(m.index(Field::BirthDate), Some(5));
        assert_eq!(m.index(Field::Tier), None);
    }

    #[test]
    fn more_specific_alias_wins_regardless_of_order() {
        let m = ColumnMap::from_headers(["ClubCode", "Status", "ClubDescr", "ClubStatus", "Email"]);
        assert_eq!(m.index(Field::Tier), Some(2));
        assert_eq!(m.index(Field::Status), Some(3));
    }

    #[test]
    fn first_of_two_identical_columns_wins() {
        let m = ColumnMap::from_headers(["Email", "EMAIL"]);
        assert_eq!(m.index(Field::Email), Some(0));
    }

    #[test]
    fn bom_on_first_header_is_ignored() {
        let m = ColumnMap::from_headers(["\u{feff}Email"]);
        assert_eq!(m.index(Field::Email), Some(0));
    }
}
