//! Resellers' OCTO bookings, in the `commerce` table beside the orders.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | booking | `OCTO#<p>#<uuid>` | `BOOKING` | the reservation and its life (version-checked); `gsi1`: `OCTOBOOKINGS#<p>` / `<created at, µs UTC>#<uuid>` for the listing by reference or date |
//!
//! A reservation's seats are held in the capacity counter (see
//! `checkout_repo`) in the same transaction as the booking; its
//! confirmation is the order's transaction with the booking's write added.

use domain::octo::OctoBooking;
use domain::{PropertyId, StoreError};

use super::checkout_repo::OrderTx;
use super::items::{Cond, Item, Query, Table, Write};
use super::{Store, decode, encode};

const T: Table = Table::Commerce;

/// Bookings one listing reads at most (newest first).
pub const OCTO_LISTING_SCAN: usize = 2000;

fn booking_pk(p: &PropertyId, uuid: &str) -> String {
    format!("OCTO#{p}#{uuid}")
}

fn bookings_index(p: &PropertyId) -> String {
    format!("OCTOBOOKINGS#{p}")
}

impl Store {
    /// A booking with its version.
    pub async fn octo_booking(
        &self,
        p: &PropertyId,
        uuid: &str,
    ) -> Result<Option<(OctoBooking, i64)>, StoreError> {
        match self
            .items()
            .get(T, &booking_pk(p, uuid), "BOOKING", self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    /// The property's bookings, newest first, those `keep` accepts (reading
    /// at most [`OCTO_LISTING_SCAN`]).
    pub async fn octo_bookings(
        &self,
        p: &PropertyId,
        keep: &(dyn Fn(&OctoBooking) -> bool + Send + Sync),
    ) -> Result<Vec<OctoBooking>, StoreError> {
        let mut q = Query::gsi1(T, bookings_index(p)).descending().limit(100);
        let (mut out, mut scanned) = (Vec::new(), 0usize);
        loop {
            let page = self.items().query(&q, self.now_ts()).await?;
            for i in &page.items {
                scanned += 1;
                let b: OctoBooking = decode(i)?;
                if keep(&b) {
                    out.push(b);
                }
            }
            match page.next {
                Some(c) if scanned < OCTO_LISTING_SCAN => q = q.after(Some(c)),
                _ => return Ok(out),
            }
        }
    }

    /// The booking's write in `tx`: `None` creates it (the uuid must be
    /// new), `Some(v)` changes the version `v` that was read.
    pub fn put_octo_booking(
        &self,
        tx: &mut OrderTx,
        p: &PropertyId,
        b: &OctoBooking,
        version: Option<i64>,
    ) {
        let position = format!(
            "{}#{}",
            b.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            b.uuid
        );
        let item = Item::new(booking_pk(p, &b.uuid), "BOOKING", encode(b))
            .with_gsi1(bookings_index(p), position)
            .with_version(version.map_or(1, |v| v + 1));
        let cond = version.map_or(Cond::Absent, Cond::Version);
        tx.push(Write::put(T, item, cond));
    }
}
