//! Connections' secrets (Cloudbeds API keys, NetCarrots passwords), read
//! when needed and never logged or stored. A connection names an
//! environment variable (local runs) and optionally an SSM SecureString
//! parameter (AWS); [`read`] is the one reader of both.

/// An SSM client.
pub struct Ssm(aws_sdk_ssm::Client);

impl Ssm {
    /// From the standard AWS configuration chain (`AWS_ENDPOINT_URL_SSM`
    /// honoured), or an explicit endpoint (moto in tests).
    pub async fn connect(endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        Self(aws_sdk_ssm::Client::new(&loader.load().await))
    }

    /// The decrypted value of a parameter.
    pub async fn parameter(&self, name: &str) -> anyhow::Result<String> {
        let out = self
            .0
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "SSM parameter {name} could not be read: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            })?;
        out.parameter
            .and_then(|p| p.value)
            .ok_or_else(|| anyhow::anyhow!("SSM parameter {name} has no value"))
    }
}

/// The decrypted value of an SSM parameter, with the default configuration.
pub async fn ssm_parameter(name: &str) -> anyhow::Result<String> {
    Ssm::connect(None).await.parameter(name).await
}

/// A connection's secret, with the default AWS configuration; see
/// [`Ssm::secret`].
pub async fn read(
    env_var: &str,
    ssm_parameter: Option<&str>,
    what: &str,
) -> anyhow::Result<String> {
    if let Some(v) = from_env(env_var) {
        return Ok(v);
    }
    Ssm::connect(None)
        .await
        .secret(env_var, ssm_parameter, what)
        .await
}

fn from_env(env_var: &str) -> Option<String> {
    std::env::var(env_var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim_end_matches(['\r', '\n']).to_owned())
}

impl Ssm {
    /// A connection's secret: the environment variable `env_var` when it
    /// is set (and not blank), else the SSM parameter when one is named.
    /// Trailing line breaks are dropped (a value written from a file).
    /// `what` names the secret in errors ("the Cloudbeds key").
    pub async fn secret(
        &self,
        env_var: &str,
        ssm_parameter: Option<&str>,
        what: &str,
    ) -> anyhow::Result<String> {
        if let Some(v) = from_env(env_var) {
            return Ok(v);
        }
        let Some(name) = ssm_parameter else {
            anyhow::bail!("the environment variable {env_var} named by the connection is not set");
        };
        let v = self
            .parameter(name)
            .await
            .map_err(|e| e.context(format!("reading {what} from SSM")))?;
        Ok(v.trim_end_matches(['\r', '\n']).to_owned())
    }
}
