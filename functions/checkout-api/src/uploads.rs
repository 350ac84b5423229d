//! Club file uploads: `POST /roster-imports` takes the file as the body,
//! spools it to a temporary file as it arrives (never whole in memory) and
//! imports it through the same pipeline as a dropped file; `POST
//! /roster-imports/upload-url` hands out a presigned S3 PUT into the drop
//! bucket (API Gateway caps bodies at 10 MB), whose S3 event imports it.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use domain::StoreError;
use domain::ValidationError;
use domain::roster::import::{ImportReport, ImportSource};
use domain::roster::service::RosterError;
use domain::roster::{FileKind, SpreadsheetKind, file_kind};
use futures::StreamExt;
use platform::Store;
use platform::http::{ApiError, ApiJson, ApiQuery, Caller};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

/// The largest file `POST /roster-imports` takes (100 MiB).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// How long a presigned upload URL works.
pub const UPLOAD_URL_SECONDS: u64 = 15 * 60;

/// The drop bucket presigned uploads go into (configured in AWS; the local
/// runner has none).
#[derive(Clone, Debug)]
pub struct DropBucket {
    pub bucket: String,
    pub s3: aws_sdk_s3::Client,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name (`members_20260115.csv`): required with
    /// `application/octet-stream`, where its extension says the kind; a
    /// timestamp in it orders deliveries as for a dropped file.
    pub filename: Option<String>,
}

/// A file name as the upload names it: one segment, a club file's extension.
fn checked_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let bad = name.is_empty()
        || name.len() > 200
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
        || file_kind(name).is_none();
    if bad {
        return Err(ValidationError::new(
            "filename",
            "must be one file name of at most 200 characters ending in .csv, .txt, .tsv, .xlsx or .xls",
        )
        .into());
    }
    Ok(name.to_owned())
}

/// The file name an upload is imported under, from its `Content-Type` and
/// `?filename=`.
fn upload_name(headers: &HeaderMap, filename: Option<&str>) -> Result<String, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let by_type = match ct.as_str() {
        "text/csv" => Some(("upload.csv", FileKind::Delimited)),
        "text/tab-separated-values" => Some(("upload.tsv", FileKind::Delimited)),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            Some(("upload.xlsx", FileKind::Spreadsheet(SpreadsheetKind::Xlsx)))
        }
        "application/vnd.ms-excel" => {
            Some(("upload.xls", FileKind::Spreadsheet(SpreadsheetKind::Xls)))
        }
        "application/octet-stream" => None,
        _ => return Err(RosterError::UploadType.into()),
    };
    match (by_type, filename) {
        (None, None) => Err(RosterError::UploadType.into()),
        (None, Some(f)) => checked_name(f),
        (Some((default, _)), None) => Ok(default.to_owned()),
        (Some((_, kind)), Some(f)) => {
            let name = checked_name(f)?;
            if file_kind(&name) != Some(kind) {
                return Err(ValidationError::new(
                    "filename",
                    "its extension does not match the Content-Type",
                )
                .into());
            }
            Ok(name)
        }
    }
}

/// Imports a club file sent as the body; 202 with the import's report.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/roster-imports",
    params(("property" = String, Path), UploadQuery),
    request_body(
        content(
            (String = "text/csv"),
            (String = "text/tab-separated-values"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "application/vnd.ms-excel"),
            (String = "application/octet-stream"),
        ),
        description = "the club file as the AMS exported it (at most 100 MiB here; in AWS use `upload-url` above 10 MB)"
    ),
    responses(
        (status = 202, body = ImportReport, description = "imported: `status` says applied, held, rejected or skipped; a repeat upload of the same file answers the first import"),
        (status = 400, body = platform::http::error::ErrorBody, description = "invalid_field (filename), unreadable_body (cut off)"),
        (status = 401, body = platform::http::error::ErrorBody),
        (status = 403, body = platform::http::error::ErrorBody),
        (status = 409, body = platform::http::error::ErrorBody),
        (status = 413, body = platform::http::error::ErrorBody),
        (status = 415, body = platform::http::error::ErrorBody),
        (status = 422, body = platform::http::error::ErrorBody, description = "test_mode_mismatch (a sandbox key)"),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn upload(
    State(store): State<Store>,
    caller: Caller,
    alert: Option<Extension<ams_import::alert::HeldAlert>>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    caller.require_live()?;
    let name = upload_name(&headers, q.filename.as_deref())?;
    let too_large = RosterError::UploadTooLarge {
        limit_bytes: MAX_UPLOAD_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES) {
        return Err(too_large.into());
    }
    // Spooled to a temporary file as it arrives, hashed on the way: the
    // hash is the delivery's identity, so the same file again is a repeat.
    let spool = tempfile::NamedTempFile::new().map_err(|e| ApiError::internal(e.to_string()))?;
    let mut file = tokio::fs::File::from_std(
        spool
            .reopen()
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let mut hash = Sha256::new();
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| RosterError::UploadCutOff)?;
        len += chunk.len() as u64;
        if len > MAX_UPLOAD_BYTES {
            return Err(too_large.into());
        }
        hash.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    if declared.is_some_and(|n| n != len) {
        return Err(RosterError::UploadCutOff.into());
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    drop(file);
    let property = caller.property.clone();
    let p = property.id.clone();
    let source = ImportSource {
        key: format!("ams/{p}/{name}"),
        etag: format!("sha256-{}", hex::encode(hash.finalize())),
        sequencer: None,
        arrived_at: store.clock().now(),
    };
    let kind = file_kind(&name).ok_or(RosterError::UploadType)?;
    let input = ams_import::Input::open(spool.path(), kind)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let req =
        ams_import::ImportRequest::new(property, source, input).ok_or(RosterError::UploadType)?;
    let report = ams_import::import(&store, req)
        .await
        .map_err(StoreError::from)?;
    tracing::info!(import = %report.id, status = ?report.status, bytes = len, "uploaded club file imported");
    if let Some(Extension(alert)) = alert {
        alert.announce(&report).await;
    }
    Ok((StatusCode::ACCEPTED, Json(report)))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadUrlBody {
    /// The file's name (`members_20260115.csv`); its extension says the kind.
    pub filename: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadUrlView {
    /// PUT the file's bytes here (no other headers needed).
    pub url: String,
    pub method: String,
    /// The object key in the drop bucket (`ams/<property>/<filename>`).
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// A presigned S3 PUT URL (15 minutes) into the drop bucket under the
/// property's prefix, for files over API Gateway's 10 MB; the upload's S3
/// event imports it as a dropped file (`GET /roster-imports` shows it).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/roster-imports/upload-url",
    params(("property" = String, Path)),
    request_body = UploadUrlBody,
    responses(
        (status = 200, body = UploadUrlView),
        (status = 400, body = platform::http::error::ErrorBody),
        (status = 401, body = platform::http::error::ErrorBody),
        (status = 403, body = platform::http::error::ErrorBody),
        (status = 409, body = platform::http::error::ErrorBody),
        (status = 422, body = platform::http::error::ErrorBody, description = "upload_url_unavailable (the local hub has no drop bucket)"),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn upload_url(
    State(store): State<Store>,
    caller: Caller,
    drop: Option<Extension<DropBucket>>,
    body: ApiJson<UploadUrlBody>,
) -> Result<Json<UploadUrlView>, ApiError> {
    caller.require_live()?;
    let name = checked_name(&body.value.filename)?;
    let Some(Extension(drop)) = drop else {
        return Err(RosterError::NoDropBucket.into());
    };
    let key = format!("ams/{}/{name}", caller.live_property());
    let expires = Duration::from_secs(UPLOAD_URL_SECONDS);
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let presigned = drop
        .s3
        .put_object()
        .bucket(&drop.bucket)
        .key(&key)
        .presigned(config)
        .await
        .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
    Ok(Json(UploadUrlView {
        url: presigned.uri().to_owned(),
        method: "PUT".into(),
        key,
        expires_at: store.clock().now() + chrono::Duration::seconds(UPLOAD_URL_SECONDS as i64),
    }))
}
