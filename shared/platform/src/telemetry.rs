//! Tracing set-up. In Lambda (or with `AWS_LAMBDA_LOG_FORMAT=JSON`) logs are
//! JSON lines, level from `AWS_LAMBDA_LOG_LEVEL`; locally they are readable
//! text, level from `RUST_LOG`. Nothing here logs request bodies or URIs:
//! spans carry the route template, never codes or emails.

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// As [`init`], with `default_level` when no level is set (a one-shot
/// command whose own output matters more than request logs uses `warn`).
pub fn init_with_default(default_level: &str) {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|v| v.eq_ignore_ascii_case("json"))
        .unwrap_or(false)
        || std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_level.into())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    // stderr: stdout is for command output (a new key on its last line).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
