//! What a guest request can fail with, in the trade's words; the HTTP side
//! maps each to its code once.

use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("no such guest in this property")]
    NotFound,
    /// The guest's personal data was erased; the profile only records that.
    #[error("this guest's personal data was erased")]
    Erased,
    #[error("another guest of this property has this email")]
    EmailTaken,
    /// A guest created concurrently could not be read back.
    #[error("guest creation raced")]
    CreationRaced,
    #[error("no such erasure in this property")]
    ErasureNotFound,
    /// An unknown webhook token, or a token used for another property's
    /// events (refused alike, so a token cannot be probed).
    #[error("no such webhook")]
    WebhookNotFound,
    #[error("the body is not a JSON event")]
    WebhookNotJson,
    #[error("the event has no `event` name")]
    WebhookEventUnnamed,
    /// The property has no Cloudbeds connection (`crm connect`).
    #[error("this property is not connected to Cloudbeds")]
    CrmNotConnected,
    /// Cloudbeds could not be read (down, refused the key, odd answer).
    #[error("Cloudbeds could not be read: {0}")]
    CrmUnavailable(String),
    /// No screening check of a property with a screening service by this
    /// id (refused alike for an unknown property, so none can be probed).
    #[error("no such screening check")]
    ScreeningCheckNotFound,
    /// The signature or its timestamp does not hold.
    #[error("the screening callback's signature is invalid or too old")]
    ScreeningSignatureInvalid,
    /// The check was answered already, or a newer check replaced it.
    #[error("this screening check is no longer awaiting an answer")]
    ScreeningCheckClosed,
    /// The connection's screening secret could not be read.
    #[error("the screening secret is unavailable")]
    ScreeningSecretUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GuestError {
    pub fn crm(e: super::ports::CrmError) -> Self {
        GuestError::CrmUnavailable(e.to_string())
    }

    /// A save that changed the email and lost on its condition: the email
    /// is another guest's (a plain race stays a store conflict).
    pub fn saving(e: StoreError, changed_email: bool) -> Self {
        match e {
            StoreError::Conflict if changed_email => GuestError::EmailTaken,
            e => GuestError::Store(e),
        }
    }
}
