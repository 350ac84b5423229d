//! The S3 side: an `ObjectCreated` event → one import per record.
//!
//! Bad input never makes Lambda retry: an unknown property, a key outside
//! `ams/<property>/`, an unsupported extension or a deleted object is logged
//! and skipped, and a bad file becomes a rejected or held report. Only
//! transient failures (store, S3 reads) fail the invocation, so the async
//! retries and then the on-failure destination take over.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_sdk_s3::Client;
use domain::ports::PropertyStore;
use domain::roster::FileKind;
use domain::roster::import::{ImportReport, ImportSource};
use platform::Store;
use tokio_util::io::SyncIoBridge;

use crate::alert::HeldAlert;
pub use crate::pipeline::parse_key;
use crate::pipeline::{ImportError, ImportRequest, Input, import};

/// A failure a retry can fix; the Lambda reports it as `RetryableImportError`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RetryableImportError(pub String);

impl From<ImportError> for RetryableImportError {
    fn from(e: ImportError) -> Self {
        Self(e.to_string())
    }
}

/// An S3 client from the standard chain; path-style addressing whenever an
/// endpoint is configured (moto, MinIO), since they serve no bucket DNS.
pub async fn client(endpoint: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    let conf = loader.load().await;
    let custom = endpoint.is_some()
        || std::env::var("AWS_ENDPOINT_URL_S3").is_ok()
        || std::env::var("AWS_ENDPOINT_URL").is_ok();
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(custom)
        .build();
    Client::from_conf(s3)
}

/// S3 event keys are URL-encoded, with `+` for spaces.
pub fn decode_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handles one event: every record in order.
pub async fn handle_event(
    store: &Store,
    s3: &Client,
    event: S3Event,
) -> Result<Vec<ImportReport>, RetryableImportError> {
    handle_event_alerting(store, s3, None, event).await
}

/// [`handle_event`], announcing each held import on `alert` (the Lambda's
/// SNS topic).
pub async fn handle_event_alerting(
    store: &Store,
    s3: &Client,
    alert: Option<&HeldAlert>,
    event: S3Event,
) -> Result<Vec<ImportReport>, RetryableImportError> {
    let mut reports = Vec::new();
    for record in event.records {
        if let Some(r) = handle_record(store, s3, &record).await? {
            if let Some(alert) = alert {
                alert.announce(&r).await;
            }
            reports.push(r);
        }
    }
    Ok(reports)
}

async fn handle_record(
    store: &Store,
    s3: &Client,
    record: &S3EventRecord,
) -> Result<Option<ImportReport>, RetryableImportError> {
    let (Some(bucket), Some(raw_key)) = (
        record.s3.bucket.name.as_deref(),
        record.s3.object.key.as_deref(),
    ) else {
        tracing::warn!("S3 record without bucket or key; skipped");
        return Ok(None);
    };
    let key = decode_key(raw_key);
    let Some((property_id, kind)) = parse_key(&key) else {
        tracing::warn!("object key is not ams/<property>/<file>.<csv|txt|tsv|xlsx|xls>; skipped");
        return Ok(None);
    };
    let Some(property) = store
        .property(&property_id)
        .await
        .map_err(|e| RetryableImportError(e.to_string()))?
    else {
        tracing::warn!(property = %property_id, "club file for an unknown property; skipped");
        return Ok(None);
    };
    let mut get = s3.get_object().bucket(bucket).key(&key);
    if let Some(v) = record
        .s3
        .object
        .version_id
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        get = get.version_id(v);
    }
    let object = match get.send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
            tracing::warn!(property = %property_id, "club file deleted before it could be read; skipped");
            return Ok(None);
        }
        Err(e) => {
            return Err(RetryableImportError(
                aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            ));
        }
    };
    let etag = record
        .s3
        .object
        .e_tag
        .clone()
        .or_else(|| object.e_tag.clone())
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();
    let etag = match record
        .s3
        .object
        .version_id
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        Some(v) => format!("{etag}#{v}"),
        None => etag,
    };
    let source = ImportSource {
        key: key.clone(),
        etag,
        sequencer: record.s3.object.sequencer.clone(),
        arrived_at: record.event_time,
    };
    let body = object.body.into_async_read();
    let (input, _spool) = match kind {
        FileKind::Delimited => (Input::Stream(Box::new(SyncIoBridge::new(body))), None),
        // Spreadsheets are read with seeks: spool to Lambda's /tmp first.
        FileKind::Spreadsheet(_) => {
            let spool =
                tempfile::NamedTempFile::new().map_err(|e| RetryableImportError(e.to_string()))?;
            let mut file = tokio::fs::File::from_std(
                spool
                    .reopen()
                    .map_err(|e| RetryableImportError(e.to_string()))?,
            );
            // No more than the largest spreadsheet accepted, plus a byte for
            // the reader to see it is too large (a rejected report, not a
            // full /tmp and a retry).
            let limit = domain::roster::limits::MAX_FILE_BYTES + 1;
            let mut body = tokio::io::AsyncReadExt::take(body, limit);
            tokio::io::copy(&mut body, &mut file)
                .await
                .map_err(|e| RetryableImportError(e.to_string()))?;
            (Input::File(spool.path().to_path_buf()), Some(spool))
        }
    };
    // The key was checked above: it names this property and kind.
    let Some(req) = ImportRequest::new(property, source, input) else {
        return Ok(None);
    };
    Ok(Some(import(store, req).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            decode_key("ams/castle/Members+2026%2D01.csv"),
            "ams/castle/Members 2026-01.csv"
        );
        assert_eq!(decode_key("a%2"), "a%2");
        assert!(parse_key("ams/castle/members.csv").is_some());
        assert!(parse_key("ams/castle/sub/members.xlsx").is_some());
        for bad in [
            "ams/castle/",
            "other/castle/m.csv",
            "ams/Castle!/m.csv",
            "ams/castle/m.pdf",
            "ams/castle",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }
}
