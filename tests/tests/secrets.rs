//! Secrets come from SSM SecureString parameters in AWS (here: moto).

use platform::secrets::Ssm;

#[tokio::test]
async fn reads_a_secure_string_parameter() {
    let endpoint = tests::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    aws_sdk_ssm::Client::new(&conf)
        .put_parameter()
        .name("/guesthub/cloudbeds/castle")
        .value("cb-secret-key")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let ssm = Ssm::connect(Some(&endpoint)).await;
    assert_eq!(
        ssm.parameter("/guesthub/cloudbeds/castle").await.unwrap(),
        "cb-secret-key"
    );
    let missing = ssm
        .parameter("/guesthub/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/guesthub/none") && !missing.contains("cb-secret-key"));
}
