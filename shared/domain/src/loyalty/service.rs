//! Enrolling a guest and recording a departure: the rules of [`super`]
//! applied through the ports, shared by the HTTP routes and the Cloudbeds
//! sync (checked-out reservations are departures too).

use chrono::{DateTime, NaiveDate, Utc};

use super::ports::LoyaltyStore;
use super::{
    DEFAULT_RETRO_DAYS, DeparturePlan, Enrolment, ExportRecord, LoyaltyStay, RecordGuest,
    StayFacts, StaySource, plan_departure, release_held,
};
use crate::guest::Guest;
use crate::guest::ports::GuestStore;
use crate::{PropertyId, StoreError};

/// How often a write that lost a race is re-planned from a fresh read.
const ATTEMPTS: u32 = 8;

fn record_guest(g: &Guest, loyalty_number: Option<String>) -> RecordGuest {
    RecordGuest {
        guest: Some(g.id.clone()),
        loyalty_number,
        email: g.email.clone(),
        first_name: g.first_name.clone(),
        last_name: g.last_name.clone(),
    }
}

/// Enrols a guest. `Ok((enrolment, true))` when it was created now,
/// `Ok((enrolment, false))` when the guest was enrolled already. Either
/// way, the guest's held stays that departed within the connection's
/// retro days are queued (see [`release_held_stays`]).
pub async fn enrol<S>(
    store: &S,
    guest: &Guest,
    loyalty_number: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Enrolment, bool), StoreError>
where
    S: LoyaltyStore + ?Sized,
{
    let (e, created) = create_enrolment(store, guest, loyalty_number, now).await?;
    release_held_stays(store, guest, e.loyalty_number.clone(), now).await?;
    Ok((e, created))
}

async fn create_enrolment<S>(
    store: &S,
    guest: &Guest,
    loyalty_number: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Enrolment, bool), StoreError>
where
    S: LoyaltyStore + ?Sized,
{
    for _ in 0..ATTEMPTS {
        if let Some(e) = store.enrolment(&guest.property, &guest.id).await? {
            return Ok((e, false));
        }
        let mut e = Enrolment::new(guest.property.clone(), guest.id.clone(), now);
        e.loyalty_number = loyalty_number.clone();
        let record = ExportRecord::enrol(&e, record_guest(guest, loyalty_number.clone()), now);
        match store.enrol(&e, &record).await {
            Ok(e) => return Ok((e, true)),
            // Enrolled meanwhile (the loop reads it) — or the number is
            // another guest's, which the next read cannot fix.
            Err(StoreError::Conflict) => {
                if let Some(n) = &loyalty_number
                    && store
                        .guest_by_loyalty_number(&guest.property, n)
                        .await?
                        .is_some_and(|g| g != guest.id)
                {
                    return Err(StoreError::Conflict);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("enrolment kept racing".into()))
}

/// Queues the STAY of each of the guest's held stays that departed at most
/// the connection's `retro_days` (default [`DEFAULT_RETRO_DAYS`]) before
/// `now`; older ones stay held. Returns the records queued. Safe to repeat.
pub async fn release_held_stays<S>(
    store: &S,
    guest: &Guest,
    loyalty_number: Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<ExportRecord>, StoreError>
where
    S: LoyaltyStore + ?Sized,
{
    let p = &guest.property;
    let reservations = store.held_reservations(p, &guest.id).await?;
    if reservations.is_empty() {
        return Ok(Vec::new());
    }
    let retro = store
        .loyalty_connection(p)
        .await?
        .map_or(DEFAULT_RETRO_DAYS, |c| c.retro_days);
    let mut queued = Vec::new();
    for reservation in reservations {
        for _ in 0..ATTEMPTS {
            let Some(current) = store.loyalty_stay(p, &reservation).await? else {
                break;
            };
            if current.held_for() != Some(&guest.id) {
                break;
            }
            let who = record_guest(guest, loyalty_number.clone());
            let Some((released, record)) =
                release_held(&current, who, now.date_naive(), retro, now)
            else {
                break;
            };
            match store
                .save_loyalty_stay(&released, Some(&current), std::slice::from_ref(&record))
                .await
            {
                Ok(()) => {
                    queued.push(record);
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(queued)
}

/// A departure as reported.
#[derive(Debug, Clone)]
pub struct Departure {
    pub guest: Guest,
    pub loyalty_number: Option<String>,
    pub arrival: NaiveDate,
    pub departure: NaiveDate,
    pub room_revenue: crate::Money,
    pub other_revenue: crate::Money,
}

/// What recording a departure did.
#[derive(Debug, Clone)]
pub struct DepartureOutcome {
    pub stay: LoyaltyStay,
    /// Whether the report changed the stay (false: the same as recorded).
    pub changed: bool,
    /// The records queued now (empty when nothing changed).
    pub queued: Vec<ExportRecord>,
}

/// Records a departure (`Some`) or a cancellation (`None`) of a
/// reservation. A cancellation of an unknown reservation is `Ok(None)`.
pub async fn record_departure<S>(
    store: &S,
    property: &PropertyId,
    reservation: &str,
    report: Option<Departure>,
    source: StaySource,
    now: DateTime<Utc>,
) -> Result<Option<DepartureOutcome>, StoreError>
where
    S: LoyaltyStore + GuestStore + ?Sized,
{
    let mut next = None;
    // Cancellations need no membership: they only undo what was sent.
    let mut member = true;
    if let Some(d) = &report {
        let enrolled = store.enrolment(property, &d.guest.id).await?;
        member = enrolled.is_some();
        let number = d
            .loyalty_number
            .clone()
            .or_else(|| enrolled.as_ref().and_then(|e| e.loyalty_number.clone()));
        let facts = StayFacts {
            guest: d.guest.id.clone(),
            loyalty_number: number.clone(),
            arrival: d.arrival,
            departure: d.departure,
            room_revenue: d.room_revenue,
            other_revenue: d.other_revenue,
        };
        next = Some((facts, record_guest(&d.guest, number)));
    }
    for _ in 0..ATTEMPTS {
        let current = store.loyalty_stay(property, reservation).await?;
        if current.is_none() && next.is_none() {
            return Ok(None);
        }
        let standing = match current.as_ref().and_then(|c| c.stay_transaction.as_deref()) {
            Some(id) => store.export_record(property, id).await?,
            None => None,
        };
        let plan = plan_departure(
            property,
            reservation,
            current.as_ref(),
            standing.as_ref(),
            member,
            next.clone(),
            source,
            now,
        );
        let (stay, records) = match plan {
            DeparturePlan::Unchanged => {
                return Ok(current.map(|stay| DepartureOutcome {
                    stay,
                    changed: false,
                    queued: Vec::new(),
                }));
            }
            DeparturePlan::Change { stay, records } => (*stay, records),
        };
        match store
            .save_loyalty_stay(&stay, current.as_ref(), &records)
            .await
        {
            Ok(()) => {
                if let Some(d) = &report {
                    note_last_stay(store, property, d).await?;
                    // Enrolled while this was being recorded: the enrolment
                    // found nothing held yet, so release it now.
                    if stay.held && store.enrolment(property, &d.guest.id).await?.is_some() {
                        let released =
                            release_held_stays(store, &d.guest, d.loyalty_number.clone(), now)
                                .await?;
                        if let Some(fresh) = store.loyalty_stay(property, reservation).await? {
                            return Ok(Some(DepartureOutcome {
                                stay: fresh,
                                changed: true,
                                queued: released,
                            }));
                        }
                    }
                }
                return Ok(Some(DepartureOutcome {
                    stay,
                    changed: true,
                    queued: records,
                }));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("the stay kept changing".into()))
}

/// Keeps the enrolment's last stay (for search) current; a lost race is
/// left to the writer that won it.
async fn note_last_stay<S>(store: &S, p: &PropertyId, d: &Departure) -> Result<(), StoreError>
where
    S: LoyaltyStore + ?Sized,
{
    if let Some(mut e) = store.enrolment(p, &d.guest.id).await?
        && e.last_stay.is_none_or(|l| l < d.departure)
    {
        e.last_stay = Some(d.departure);
        if e.loyalty_number.is_none() {
            e.loyalty_number = d.loyalty_number.clone();
        }
        match store.save_enrolment(&e).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Erasure: the guest's records not yet chosen for a file are left out of
/// every file (their personal data never leaves). Records already chosen
/// or delivered are NetCarrots' to erase. Returns how many were left out.
pub async fn forget_unsent<S>(
    store: &S,
    property: &PropertyId,
    guest: &crate::guest::GuestId,
) -> Result<usize, StoreError>
where
    S: LoyaltyStore + ?Sized,
{
    let chosen: Vec<String> = store
        .export_state(property)
        .await?
        .open
        .map(|o| o.plan.send)
        .unwrap_or_default();
    let mine: Vec<ExportRecord> = store
        .pending_records(property, usize::MAX)
        .await?
        .into_iter()
        .filter(|r| r.guest.guest.as_ref() == Some(guest))
        .filter(|r| !chosen.contains(&r.transaction_id))
        .collect();
    store.mark_records(&mine, None).await?;
    Ok(mine.len())
}
