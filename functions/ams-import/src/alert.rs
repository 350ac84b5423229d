//! The held-file alert in AWS: a held import is published to an SNS topic
//! (`ClubAlertTopic` in template.yaml; the club manager subscribes to it by
//! email). Locally the same import logs a warning line instead (see
//! `pipeline::log_outcome`). The message carries no personal data: the
//! property, the file's name, the reason and how to approve.

use domain::roster::import::{ImportReport, ImportStatus};

/// Where held imports are announced.
#[derive(Clone, Debug)]
pub struct HeldAlert {
    pub topic_arn: String,
    pub sns: aws_sdk_sns::Client,
}

impl HeldAlert {
    /// From `HELD_IMPORT_TOPIC_ARN` (unset or empty: no alert).
    pub async fn from_env() -> Option<Self> {
        let topic_arn = std::env::var("HELD_IMPORT_TOPIC_ARN")
            .ok()
            .filter(|t| !t.is_empty())?;
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Some(Self {
            topic_arn,
            sns: aws_sdk_sns::Client::new(&conf),
        })
    }

    /// Publishes a held import; anything else is not announced. A failed
    /// publish is logged, never fails the import (the report is stored and
    /// the warning is in the log).
    pub async fn announce(&self, r: &ImportReport) {
        if r.status != ImportStatus::Held {
            return;
        }
        let (subject, message) = held_message(r);
        if let Err(e) = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
        {
            tracing::error!(
                import = %r.id,
                error = %aws_sdk_sns::error::DisplayErrorContext(e),
                "the held-import alert could not be published"
            );
        }
    }
}

/// The alert's subject (at most 100 characters, as SNS takes) and text.
pub fn held_message(r: &ImportReport) -> (String, String) {
    let mut subject = format!("GuestHub: club file held for {}", r.property);
    subject.truncate(100);
    let message = format!(
        "The club file {file} for {p} was held: {reason}.\n\
         The roster was not replaced; lookups and discounts use the previous file.\n\
         Rows {rows}, members {members} (previously {previous}).\n\n\
         Check the file, then approve it:\n  POST /v1/properties/{p}/roster-imports/{id}/approve\n\
         or send a corrected file. Import id: {id}",
        file = r.file,
        p = r.property,
        reason = r.reason.as_deref().unwrap_or("held"),
        rows = r.rows,
        members = r.members,
        previous = r.previous_members,
        id = r.id,
    );
    (subject, message)
}
