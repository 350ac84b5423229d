//! Where a connection's FTP password comes from. The connection holds only
//! names: an environment variable (local runs) and optionally an SSM
//! SecureString parameter (AWS). The password is never stored or logged.

use anyhow::{Context, bail};
use domain::loyalty::LoyaltyConnection;
use platform::transfer::Password;

pub async fn password(conn: &LoyaltyConnection) -> anyhow::Result<Password> {
    if let Ok(v) = std::env::var(&conn.password_env)
        && !v.is_empty()
    {
        return Ok(Password::new(v));
    }
    if let Some(name) = &conn.password_ssm_parameter {
        let v = platform::secrets::ssm_parameter(name)
            .await
            .context("reading the NetCarrots password from SSM")?;
        return Ok(Password::new(v.trim_end_matches(['\r', '\n'])));
    }
    bail!(
        "the environment variable {} named by the loyalty connection is not set",
        conn.password_env
    )
}
