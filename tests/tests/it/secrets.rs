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

/// One reader for every connection's secret: the named environment
/// variable first, else the SSM parameter; an error names the variable,
/// never a value.
#[tokio::test]
async fn one_reader_env_var_then_ssm() {
    let endpoint = tests::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    aws_sdk_ssm::Client::new(&conf)
        .put_parameter()
        .name("/guesthub/netcarrots/castle")
        .value("nc-secret\n")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let ssm = Ssm::connect(Some(&endpoint)).await;
    let unset = "GUESTHUB_TEST_NEVER_SET_7F3A";
    // cargo sets CARGO_PKG_NAME for the test process: the variable wins.
    let from_env = ssm
        .secret("CARGO_PKG_NAME", Some("/guesthub/netcarrots/castle"), "x")
        .await
        .unwrap();
    assert_eq!(from_env, "tests");
    let from_ssm = ssm
        .secret(unset, Some("/guesthub/netcarrots/castle"), "the password")
        .await
        .unwrap();
    assert_eq!(from_ssm, "nc-secret");
    let none = ssm
        .secret(unset, None, "the key")
        .await
        .unwrap_err()
        .to_string();
    assert!(none.contains(unset), "{none}");
    let missing = format!(
        "{:#}",
        ssm.secret(unset, Some("/guesthub/none"), "the Cloudbeds key")
            .await
            .unwrap_err()
    );
    assert!(
        missing.contains("the Cloudbeds key") && missing.contains("/guesthub/none"),
        "{missing}"
    );
}
