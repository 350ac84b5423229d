//! What a loyalty request can fail with, in the trade's words; the HTTP side
//! maps each to its code once.

use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    #[error("another guest of this property holds this loyalty number")]
    NumberTaken,
    #[error("no departure was reported for this reservation")]
    DepartureNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoyaltyError {
    /// An enrolment that lost on its condition: the loyalty number's lookup
    /// is another guest's.
    pub fn enrolling(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => LoyaltyError::NumberTaken,
            e => LoyaltyError::Store(e),
        }
    }
}
