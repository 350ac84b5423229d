//! The [`EventBus`] adapter for AWS: every event is published to the
//! stack's EventBridge custom bus, so operators route them with rules
//! (`roster.import_held` → an SNS email, say).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use domain::events::Event;

use crate::events::EventBus;

/// The `source` of every GuestHub event on the bus.
pub const SOURCE: &str = "guesthub";

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    /// From the standard AWS configuration chain (`AWS_ENDPOINT_URL_EVENTBRIDGE`
    /// honoured), or an explicit endpoint (moto in tests).
    pub async fn connect(bus_name: &str, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        Self {
            client: aws_sdk_eventbridge::Client::new(&loader.load().await),
            bus: bus_name.to_owned(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    /// `detail-type` is the event's type and `detail` its envelope without
    /// personal data (rules and their targets are the operators', not a
    /// partner's with the `guests` scope). At most 10 events per call.
    async fn publish(&self, events: &[Event]) -> Result<(), String> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(e.kind.as_str())
                        .detail(e.envelope(false).to_string())
                        .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                            e.occurred_at.timestamp_millis(),
                        ))
                        .build()
                })
                .collect::<Vec<_>>();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())?;
            if out.failed_entry_count() > 0 {
                return Err(format!(
                    "EventBridge refused {} of {} events",
                    out.failed_entry_count(),
                    chunk.len()
                ));
            }
        }
        Ok(())
    }
}
