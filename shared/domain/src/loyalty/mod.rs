//! Loyalty (NetCarrots): enrolments, stay transactions at departure, and
//! the export outbox they feed.
//!
//! Layout:
//! - this file: the connection, enrolments, stays and the export records,
//!   with the rules that turn a departure (or its correction) into records.
//! - [`file`]: our export file format (NetCarrots' is not public) and the
//!   members/points file NetCarrots returns.
//! - [`ports`]: `LoyaltyStore` and `FileDrop` (where export files go).
//! - [`service`]: enrolling and recording departures through the ports.
//!
//! Every record has a stable transaction id derived from what it is about
//! (`ENR-<guest>`, `STY-<reservation>-<rev>`, `UND-<reservation>-<rev>`),
//! so writing a record twice is a conflict, never a duplicate, and a file
//! sent again carries the same ids.

pub mod error;
pub mod file;
pub mod ports;
pub mod service;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::guest::GuestId;
use crate::{Currency, Email, Money, PropertyId, ValidationError};

/// Most records one export file carries; more wait for the next run. Keeps
/// the open batch (its transaction ids) well inside one stored item.
pub const MAX_RECORDS_PER_FILE: usize = 4_000;

/// How many days after a departure a guest may enrol and still have the
/// stay exported, unless the connection says otherwise (0: never).
pub const DEFAULT_RETRO_DAYS: u32 = 30;

fn default_retro_days() -> u32 {
    DEFAULT_RETRO_DAYS
}

/// How the export reaches NetCarrots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Ftp,
    /// FTP with explicit TLS (`AUTH TLS`).
    Ftps,
    Sftp,
}

impl Transport {
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Ftp | Transport::Ftps => 21,
            Transport::Sftp => 22,
        }
    }
}

/// A parsed `ftp://`, `ftps://` or `sftp://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoteUrl {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
    /// The upload folder, `/` separated, without a trailing `/` (`""` is
    /// the login folder).
    pub path: String,
}

impl RemoteUrl {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::new("url", why.to_owned());
        let raw = raw.trim();
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| bad("is ftp://, ftps:// or sftp://host[:port]/path"))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "ftp" => Transport::Ftp,
            "ftps" => Transport::Ftps,
            "sftp" => Transport::Sftp,
            _ => return Err(bad("scheme must be ftp, ftps or sftp")),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(bad(
                "must not carry credentials: use --username and --password-env",
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("port is not a number 1-65535"))?,
            ),
            None => (authority, transport.default_port()),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err(bad("host is not a host name or IPv4 address"));
        }
        let path = path.trim_end_matches('/');
        if path.split('/').any(|s| s == "..") || path.contains('\\') {
            return Err(bad("path must not contain '..' or '\\'"));
        }
        Ok(Self {
            transport,
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_owned(),
        })
    }

    /// The return folder NetCarrots leaves members files in.
    pub fn return_path(&self) -> String {
        if self.path.is_empty() {
            "return".into()
        } else {
            format!("{}/return", self.path)
        }
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Ftp => "ftp",
            Transport::Ftps => "ftps",
            Transport::Sftp => "sftp",
        };
        write!(f, "{scheme}://{}:{}/{}", self.host, self.port, self.path)
    }
}

/// NetCarrots' code for the property: the file name prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct PropertyCode(pub String);

impl PropertyCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let t = raw.trim();
        let ok = !t.is_empty()
            && t.len() <= 20
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(t.to_owned()))
        } else {
            Err(ValidationError::new(
                "property_code",
                "is 1-20 characters of A-Z, a-z, 0-9 and -",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A property's NetCarrots connection. Holds where the password is, never
/// the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoyaltyConnection {
    pub property: PropertyId,
    pub url: RemoteUrl,
    pub username: String,
    /// Name of the environment variable holding the password.
    pub password_env: String,
    /// In AWS: the SSM parameter holding the password (SecureString).
    pub password_ssm_parameter: Option<String>,
    pub property_code: PropertyCode,
    /// A PEM certificate to trust for FTPS besides the public roots (a
    /// server with a self-signed certificate). Public, not a secret.
    pub tls_ca_pem: Option<String>,
    /// SFTP: the server's host key fingerprint as OpenSSH prints it
    /// (`SHA256:...`); connections to any other key are refused.
    #[serde(default)]
    pub ssh_host_key: Option<String>,
    /// A departure of a guest who was not enrolled is kept here; if the
    /// guest enrols within this many days of the departure, the stay is
    /// exported with the enrolment (0: never).
    #[serde(default = "default_retro_days")]
    pub retro_days: u32,
    pub connected_at: DateTime<Utc>,
}

/// Where an enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentState {
    /// Waiting for the next export.
    Pending,
    /// In a file delivered to NetCarrots.
    Exported,
    /// NetCarrots' members file listed the guest.
    Confirmed,
}

/// A guest's membership of the property's loyalty programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Enrolment {
    pub property: PropertyId,
    pub guest: GuestId,
    pub transaction_id: String,
    pub state: EnrolmentState,
    /// NetCarrots' member number, once known (from the PMS or the members
    /// file).
    pub loyalty_number: Option<String>,
    pub tier: Option<String>,
    pub points: Option<i64>,
    pub enrolled_at: DateTime<Utc>,
    pub exported_in: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = Date)]
    pub last_stay: Option<NaiveDate>,
    /// The store's version of this record (optimistic concurrency).
    #[serde(default)]
    pub revision: i64,
}

impl Enrolment {
    pub fn new(property: PropertyId, guest: GuestId, now: DateTime<Utc>) -> Self {
        Self {
            transaction_id: enrol_transaction_id(&guest),
            property,
            guest,
            state: EnrolmentState::Pending,
            loyalty_number: None,
            tier: None,
            points: None,
            enrolled_at: now,
            exported_in: None,
            confirmed_at: None,
            last_stay: None,
            revision: 0,
        }
    }
}

/// A loyalty (member) number: what NetCarrots prints on the card.
pub fn parse_loyalty_number(raw: &str) -> Result<String, ValidationError> {
    let t = raw.trim();
    let ok =
        !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(t.to_ascii_uppercase())
    } else {
        Err(ValidationError::new(
            "loyalty_number",
            "is 1-32 characters of A-Z, 0-9 and -",
        ))
    }
}

/// A PMS reservation number: travels in paths, keys and transaction ids.
pub fn parse_reservation(raw: &str) -> Result<String, ValidationError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ValidationError::new(
            "reservation",
            "is 1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        ))
    }
}

/// Who told us about a departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaySource {
    /// An HTTP call from the PMS (RMS or any other).
    Pms,
    /// A checked-out reservation pulled from Cloudbeds.
    Cloudbeds,
}

/// What a departure reports: the stay as the loyalty programme counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StayFacts {
    pub guest: GuestId,
    pub loyalty_number: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub arrival: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub departure: NaiveDate,
    pub room_revenue: Money,
    pub other_revenue: Money,
}

impl StayFacts {
    /// Checks the dates and amounts: departure after arrival (at most a
    /// year), non-negative revenue in one currency.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let nights = self.nights();
        if nights < 1 {
            return Err(ValidationError::new(
                "departure",
                "must be after the arrival",
            ));
        }
        if nights > 366 {
            return Err(ValidationError::new(
                "departure",
                "is more than 366 nights after the arrival",
            ));
        }
        self.room_revenue.non_negative("room_revenue")?;
        self.other_revenue.non_negative("other_revenue")?;
        if self.total().is_none() {
            return Err(ValidationError::new(
                "currency",
                "room and other revenue must share one currency and fit",
            ));
        }
        Ok(())
    }

    pub fn nights(&self) -> i64 {
        (self.departure - self.arrival).num_days()
    }

    pub fn total(&self) -> Option<Money> {
        self.room_revenue.checked_add(self.other_revenue)
    }

    pub fn currency(&self) -> Currency {
        self.room_revenue.currency
    }
}

/// A reservation's loyalty state: the facts last reported and the STAY
/// record that stands for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoyaltyStay {
    pub property: PropertyId,
    pub reservation: String,
    /// `None` once cancelled.
    pub facts: Option<StayFacts>,
    /// Bumped on every change that made a new STAY record.
    pub revision: u32,
    /// The STAY record standing for `facts` (`None` once cancelled).
    pub stay_transaction: Option<String>,
    pub source: StaySource,
    pub updated_at: DateTime<Utc>,
    /// Kept here, not exported: the guest was not enrolled when the stay
    /// was reported. Released (its STAY queued) if the guest enrols within
    /// the connection's `retro_days` of the departure.
    #[serde(default)]
    pub held: bool,
    /// The store's version of this record (optimistic concurrency).
    #[serde(default)]
    pub version: i64,
}

impl LoyaltyStay {
    /// The guest a held stay waits for.
    pub fn held_for(&self) -> Option<&GuestId> {
        self.facts.as_ref().filter(|_| self.held).map(|f| &f.guest)
    }
}

pub fn enrol_transaction_id(g: &GuestId) -> String {
    format!("ENR-{g}")
}

pub fn stay_transaction_id(reservation: &str, revision: u32) -> String {
    format!("STY-{reservation}-{revision}")
}

pub fn undo_transaction_id(reservation: &str, revision: u32) -> String {
    format!("UND-{reservation}-{revision}")
}

/// The record types of the export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    Enrol,
    Stay,
    Undo,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Enrol => "ENROL",
            RecordKind::Stay => "STAY",
            RecordKind::Undo => "UNDO",
        }
    }
}

/// The guest as a record names them, captured when the record is made so
/// a file sent again is byte for byte the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordGuest {
    pub guest: Option<GuestId>,
    pub loyalty_number: Option<String>,
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One line of an export file, kept in the outbox until it was delivered.
/// Immutable once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportRecord {
    pub transaction_id: String,
    pub property: PropertyId,
    pub kind: RecordKind,
    pub created_at: DateTime<Utc>,
    pub guest: RecordGuest,
    pub reservation: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub arrival: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub departure: Option<NaiveDate>,
    pub room_revenue: Option<Money>,
    pub other_revenue: Option<Money>,
    /// UNDO: the STAY it reverses.
    pub reverses: Option<String>,
    /// The file it was delivered in; `None` while pending.
    pub exported_in: Option<String>,
    /// When it was marked delivered (retention counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Left out of every file: a STAY and its UNDO both still pending.
    #[serde(default)]
    pub superseded: bool,
}

impl ExportRecord {
    /// The order records are queued and written in.
    pub fn queue_key(&self) -> String {
        format!(
            "{}#{}",
            self.created_at.format("%Y%m%dT%H%M%S%.6fZ"),
            self.transaction_id
        )
    }

    pub fn is_pending(&self) -> bool {
        self.exported_in.is_none() && !self.superseded
    }

    pub fn enrol(e: &Enrolment, guest: RecordGuest, now: DateTime<Utc>) -> Self {
        Self {
            transaction_id: e.transaction_id.clone(),
            property: e.property.clone(),
            kind: RecordKind::Enrol,
            created_at: now,
            guest,
            reservation: None,
            arrival: None,
            departure: None,
            room_revenue: None,
            other_revenue: None,
            reverses: None,
            exported_in: None,
            delivered_at: None,
            superseded: false,
        }
    }

    pub fn stay(
        property: &PropertyId,
        reservation: &str,
        revision: u32,
        facts: &StayFacts,
        guest: RecordGuest,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            transaction_id: stay_transaction_id(reservation, revision),
            property: property.clone(),
            kind: RecordKind::Stay,
            created_at: now,
            guest,
            reservation: Some(reservation.to_owned()),
            arrival: Some(facts.arrival),
            departure: Some(facts.departure),
            room_revenue: Some(facts.room_revenue),
            other_revenue: Some(facts.other_revenue),
            reverses: None,
            exported_in: None,
            delivered_at: None,
            superseded: false,
        }
    }

    /// The UNDO of a STAY: the same stay with the original's figures, so a
    /// reader can reverse it without looking the original up.
    fn undo_of(stay: &ExportRecord, now: DateTime<Utc>) -> Self {
        let rev = stay
            .transaction_id
            .rsplit_once('-')
            .and_then(|(_, r)| r.parse::<u32>().ok())
            .unwrap_or(0);
        let reservation = stay.reservation.clone().unwrap_or_default();
        Self {
            transaction_id: undo_transaction_id(&reservation, rev),
            kind: RecordKind::Undo,
            created_at: now,
            reverses: Some(stay.transaction_id.clone()),
            exported_in: None,
            delivered_at: None,
            superseded: false,
            ..stay.clone()
        }
    }
}

/// What a reported departure (or cancellation) changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeparturePlan {
    /// The same facts as last time: nothing to write.
    Unchanged,
    /// The stay as it is to be saved, and the records to queue (in order).
    Change {
        stay: Box<LoyaltyStay>,
        records: Vec<ExportRecord>,
    },
}

/// The rule of departures: the first report queues a STAY; a correction
/// queues an UNDO of the standing STAY and a new STAY; a cancellation
/// queues only the UNDO. Undoing a STAY that was never sent is harmless:
/// the export leaves such pairs out of the file (see [`plan_batch`]).
///
/// Only members' stays leave the building: for a guest who is not
/// enrolled (`member` false) and has no STAY standing, the stay is kept
/// (`held`) and nothing is queued; [`release_held`] queues it if the guest
/// enrols in time.
///
/// `standing` is the STAY record of `current` (read by the caller).
#[expect(
    clippy::too_many_arguments,
    reason = "the rule's inputs, each read once"
)]
pub fn plan_departure(
    property: &PropertyId,
    reservation: &str,
    current: Option<&LoyaltyStay>,
    standing: Option<&ExportRecord>,
    member: bool,
    next: Option<(StayFacts, RecordGuest)>,
    source: StaySource,
    now: DateTime<Utc>,
) -> DeparturePlan {
    let current_facts = current.and_then(|c| c.facts.as_ref());
    if current_facts == next.as_ref().map(|(f, _)| f) {
        return DeparturePlan::Unchanged;
    }
    let mut records = Vec::new();
    if let Some(s) = standing {
        records.push(ExportRecord::undo_of(s, now));
    }
    let revision = current.map_or(1, |c| c.revision + 1);
    let hold = !member && standing.is_none();
    let (facts, stay_transaction) = match next {
        Some((facts, _)) if hold => (Some(facts), None),
        Some((facts, guest)) => {
            let rec = ExportRecord::stay(property, reservation, revision, &facts, guest, now);
            let id = rec.transaction_id.clone();
            records.push(rec);
            (Some(facts), Some(id))
        }
        None => (None, None),
    };
    let held = hold && facts.is_some();
    let stay = LoyaltyStay {
        property: property.clone(),
        reservation: reservation.to_owned(),
        facts,
        revision,
        stay_transaction,
        source,
        updated_at: now,
        held,
        version: current.map_or(0, |c| c.version),
    };
    DeparturePlan::Change {
        stay: Box::new(stay),
        records,
    }
}

/// A held stay of a guest who enrolled on `enrolled_on`: the stay to save
/// and its STAY record, if the departure was at most `retro_days` before
/// (never with 0); `None` leaves it held.
pub fn release_held(
    stay: &LoyaltyStay,
    guest: RecordGuest,
    enrolled_on: NaiveDate,
    retro_days: u32,
    now: DateTime<Utc>,
) -> Option<(LoyaltyStay, ExportRecord)> {
    let facts = stay.facts.as_ref().filter(|_| stay.held)?;
    let age = (enrolled_on - facts.departure).num_days();
    if retro_days == 0 || age > i64::from(retro_days) {
        return None;
    }
    let record = ExportRecord::stay(
        &stay.property,
        &stay.reservation,
        stay.revision,
        facts,
        guest,
        now,
    );
    let mut released = stay.clone();
    released.held = false;
    released.stay_transaction = Some(record.transaction_id.clone());
    released.updated_at = now;
    Some((released, record))
}

/// A batch: the records a file carries and those left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPlan {
    /// In file order.
    pub send: Vec<String>,
    /// STAY + UNDO pairs where neither was ever sent.
    pub drop: Vec<String>,
}

/// Chooses the next file's records from the pending ones (in queue order):
/// at most [`MAX_RECORDS_PER_FILE`], with pairs of a pending STAY and its
/// pending UNDO left out.
pub fn plan_batch(pending: &[ExportRecord]) -> BatchPlan {
    let undone: std::collections::HashSet<&str> = pending
        .iter()
        .filter_map(|r| r.reverses.as_deref())
        .collect();
    let pending_ids: std::collections::HashSet<&str> =
        pending.iter().map(|r| r.transaction_id.as_str()).collect();
    let mut plan = BatchPlan::default();
    for r in pending {
        let silent_pair = match r.kind {
            RecordKind::Stay => undone.contains(r.transaction_id.as_str()),
            RecordKind::Undo => r
                .reverses
                .as_deref()
                .is_some_and(|s| pending_ids.contains(s)),
            RecordKind::Enrol => false,
        };
        if silent_pair {
            plan.drop.push(r.transaction_id.clone());
        } else if plan.send.len() < MAX_RECORDS_PER_FILE {
            plan.send.push(r.transaction_id.clone());
        }
    }
    plan
}

/// The open file of a property: chosen, maybe uploaded, not yet confirmed
/// delivered. A run finding one sends it again under the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBatch {
    pub file_name: String,
    /// The code the file is written under (kept should the connection's
    /// code change before the file is delivered).
    pub property_code: PropertyCode,
    pub created_at: DateTime<Utc>,
    pub plan: BatchPlan,
}

/// The export's state per property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    /// The next file's sequence number.
    pub next_seq: u64,
    pub open: Option<OpenBatch>,
    pub last_file: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// The store's version of this record (optimistic concurrency).
    #[serde(default)]
    pub version: i64,
}

impl Default for ExportState {
    fn default() -> Self {
        Self {
            next_seq: 1,
            open: None,
            last_file: None,
            last_run_at: None,
            version: 0,
        }
    }
}

/// `<propertycode>_<UTC yyyymmddThhmmssZ>_<seq>.csv`
pub fn export_file_name(code: &PropertyCode, at: DateTime<Utc>, seq: u64) -> String {
    format!(
        "{}_{}_{seq:06}.csv",
        code.as_str(),
        at.format("%Y%m%dT%H%M%SZ")
    )
}

/// The name a file is uploaded under before the rename makes it visible.
pub fn temporary_name(file_name: &str) -> String {
    format!("{file_name}.part")
}

/// Whether a name in the return folder is a members file of this property.
pub fn is_members_file(code: &PropertyCode, name: &str) -> bool {
    name.starts_with(&format!("{}_members_", code.as_str())) && name.ends_with(".csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PropertyId {
        PropertyId::parse("hotel-a").unwrap()
    }

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::parse("EUR").unwrap())
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn facts(room: i64) -> StayFacts {
        StayFacts {
            guest: GuestId("g1".into()),
            loyalty_number: None,
            arrival: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            departure: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            room_revenue: eur(room),
            other_revenue: eur(1_000),
        }
    }

    fn apply(
        current: Option<LoyaltyStay>,
        standing: Option<ExportRecord>,
        next: Option<StayFacts>,
    ) -> (LoyaltyStay, Vec<ExportRecord>) {
        let plan = plan_departure(
            &p(),
            "R1",
            current.as_ref(),
            standing.as_ref(),
            true,
            next.map(|f| (f, RecordGuest::default())),
            StaySource::Pms,
            t("2026-11-22T10:00:00Z"),
        );
        match plan {
            DeparturePlan::Change { stay, records } => (*stay, records),
            DeparturePlan::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn urls_parse_with_defaults_and_refuse_credentials() {
        let u = RemoteUrl::parse("ftps://Files.Example.com/in/gh/").unwrap();
        assert_eq!(u.transport, Transport::Ftps);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("files.example.com", 21, "in/gh")
        );
        assert_eq!(u.return_path(), "in/gh/return");
        let s = RemoteUrl::parse("sftp://10.0.0.5:2222").unwrap();
        assert_eq!((s.port, s.path.as_str()), (2222, ""));
        assert!(RemoteUrl::parse("ftp://user:pw@host/x").is_err());
        assert!(RemoteUrl::parse("http://host/x").is_err());
        assert!(RemoteUrl::parse("ftp://host:0/x").is_err());
        assert!(RemoteUrl::parse("ftp://host/../etc").is_err());
    }

    #[test]
    fn departure_then_correction_then_cancellation() {
        let (s1, r1) = apply(None, None, Some(facts(40_000)));
        assert_eq!(r1.len(), 1);
        assert_eq!(r1[0].transaction_id, "STY-R1-1");
        assert_eq!(s1.stay_transaction.as_deref(), Some("STY-R1-1"));

        let same = plan_departure(
            &p(),
            "R1",
            Some(&s1),
            Some(&r1[0]),
            true,
            Some((facts(40_000), RecordGuest::default())),
            StaySource::Pms,
            t("2026-11-22T11:00:00Z"),
        );
        assert_eq!(same, DeparturePlan::Unchanged);

        let (s2, r2) = apply(Some(s1), Some(r1[0].clone()), Some(facts(45_000)));
        let ids: Vec<_> = r2.iter().map(|r| r.transaction_id.as_str()).collect();
        assert_eq!(ids, ["UND-R1-1", "STY-R1-2"]);
        assert_eq!(r2[0].reverses.as_deref(), Some("STY-R1-1"));
        assert_eq!(r2[0].room_revenue, Some(eur(40_000)));

        let (s3, r3) = apply(Some(s2), Some(r2[1].clone()), None);
        assert_eq!(r3.len(), 1);
        assert_eq!(r3[0].transaction_id, "UND-R1-2");
        assert!(s3.facts.is_none() && s3.stay_transaction.is_none());
    }

    #[test]
    fn non_members_stays_are_held_until_they_enrol_in_time() {
        let plan = plan_departure(
            &p(),
            "R1",
            None,
            None,
            false,
            Some((facts(40_000), RecordGuest::default())),
            StaySource::Pms,
            t("2026-11-22T10:00:00Z"),
        );
        let DeparturePlan::Change { stay, records } = plan else {
            panic!("a change")
        };
        assert!(records.is_empty() && stay.held && stay.stay_transaction.is_none());
        assert_eq!(stay.held_for(), Some(&GuestId("g1".into())));
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let now = t("2026-12-20T10:00:00Z");
        // Departure 2026-11-22: 28 days before Dec 20.
        let (released, rec) =
            release_held(&stay, RecordGuest::default(), day(20), 30, now).unwrap();
        assert_eq!(rec.transaction_id, "STY-R1-1");
        assert_eq!(rec.kind, RecordKind::Stay);
        assert!(!released.held);
        assert_eq!(released.stay_transaction.as_deref(), Some("STY-R1-1"));
        assert!(release_held(&stay, RecordGuest::default(), day(20), 27, now).is_none());
        assert!(release_held(&stay, RecordGuest::default(), day(20), 0, now).is_none());
        assert!(release_held(&released, RecordGuest::default(), day(20), 30, now).is_none());
    }

    #[test]
    fn facts_are_checked() {
        let mut f = facts(1);
        f.departure = f.arrival;
        assert!(f.validate().is_err());
        let mut f = facts(1);
        f.other_revenue = Money::new(1, Currency::parse("USD").unwrap());
        assert!(f.validate().is_err());
        let mut f = facts(1);
        f.room_revenue = eur(-1);
        assert!(f.validate().is_err());
        assert!(facts(1).validate().is_ok());
    }

    #[test]
    fn a_batch_leaves_out_pairs_never_sent() {
        let (s1, r1) = apply(None, None, Some(facts(40_000)));
        let (_, r2) = apply(Some(s1), Some(r1[0].clone()), Some(facts(45_000)));
        let mut pending = r1.clone();
        pending.extend(r2.clone());
        let plan = plan_batch(&pending);
        assert_eq!(plan.send, ["STY-R1-2"]);
        assert_eq!(plan.drop, ["STY-R1-1", "UND-R1-1"]);

        // Once STY-R1-1 was sent, its UNDO must go out.
        let plan = plan_batch(&r2);
        assert_eq!(plan.send, ["UND-R1-1", "STY-R1-2"]);
        assert!(plan.drop.is_empty());
    }

    #[test]
    fn file_names_follow_the_contract() {
        let code = PropertyCode::parse("ALP01").unwrap();
        assert_eq!(
            export_file_name(&code, t("2026-11-22T03:04:05Z"), 7),
            "ALP01_20261122T030405Z_000007.csv"
        );
        assert!(is_members_file(&code, "ALP01_members_20261122.csv"));
        assert!(!is_members_file(&code, "ALP02_members_20261122.csv"));
        assert!(!is_members_file(&code, "ALP01_members_20261122.csv.part"));
    }
}
