//! Secrets from SSM Parameter Store (SecureString), read when needed and
//! never logged or stored. Locally, connections name environment variables
//! instead; this is the AWS path.

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
