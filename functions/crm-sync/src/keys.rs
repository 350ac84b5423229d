//! Where a connection's Cloudbeds API key comes from: the connection names
//! an environment variable (local runs) and optionally an SSM SecureString
//! parameter (AWS), read by `platform::secrets`. The key is never stored or
//! logged.

use domain::guest::CrmConnection;
use platform::cloudbeds::ApiKey;

pub async fn api_key(conn: &CrmConnection) -> anyhow::Result<ApiKey> {
    let key = platform::secrets::read(
        &conn.api_key_env,
        conn.api_key_ssm_parameter.as_deref(),
        "the Cloudbeds key",
    )
    .await?;
    Ok(ApiKey::new(key.trim()))
}
