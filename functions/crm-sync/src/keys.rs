//! Where a connection's Cloudbeds API key comes from. The connection holds
//! only names: an environment variable (local runs) and optionally an SSM
//! SecureString parameter (AWS). The key is never stored or logged.

use anyhow::{Context, bail};
use domain::guest::CrmConnection;
use platform::cloudbeds::ApiKey;

pub async fn api_key(conn: &CrmConnection) -> anyhow::Result<ApiKey> {
    if let Ok(v) = std::env::var(&conn.api_key_env)
        && !v.trim().is_empty()
    {
        return Ok(ApiKey::new(v.trim()));
    }
    if let Some(name) = &conn.api_key_ssm_parameter {
        return from_ssm(name).await;
    }
    bail!(
        "the environment variable {} named by the connection is not set",
        conn.api_key_env
    )
}

async fn from_ssm(name: &str) -> anyhow::Result<ApiKey> {
    let key = platform::secrets::ssm_parameter(name)
        .await
        .context("reading the Cloudbeds key from SSM")?;
    Ok(ApiKey::new(key.trim()))
}
