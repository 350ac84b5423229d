//! Where a connection's FTP password comes from: the connection names an
//! environment variable (local runs) and optionally an SSM SecureString
//! parameter (AWS), read by `platform::secrets`. The password is never
//! stored or logged.

use domain::loyalty::LoyaltyConnection;
use platform::transfer::Password;

pub async fn password(conn: &LoyaltyConnection) -> anyhow::Result<Password> {
    let pw = platform::secrets::read(
        &conn.password_env,
        conn.password_ssm_parameter.as_deref(),
        "the NetCarrots password",
    )
    .await?;
    Ok(Password::new(pw))
}
