//! The `ddb-archiver-lambda` function: a thin shell over [`ddb_archiver::lambda`] on the
//! Lambda runtime. Settings (from environment variables) are validated and the S3
//! client is built once, at init; each invocation archives one DynamoDB Streams or
//! Kinesis event and answers with `batchItemFailures`.

use std::sync::Arc;

use anyhow::Context as _;
use ddb_archiver::lambda::{self, Function};
use ddb_archiver::settings::Settings;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let function = match init().await {
        Ok(f) => Arc::new(f),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "initialisation failed");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let function = Arc::clone(&function);
        async move {
            let deadline =
                lambda::write_deadline(event.context.deadline(), std::time::SystemTime::now());
            // The event's text becomes the archiver's input without a copy.
            let payload = Box::<str>::from(event.payload).into_string().into_bytes();
            let outcome = function.handle(payload, deadline).await?;
            Ok::<_, lambda_runtime::Error>(outcome.response)
        }
    }))
    .await
}

async fn init() -> anyhow::Result<Function> {
    let settings = Settings::from_env().context("reading the settings from the environment")?;
    let dest = lambda::validate_settings(&settings).context("invalid settings")?;
    let sink = ddb_archiver::sink::open(&dest, settings.kms_key_id.as_deref())
        .await
        .with_context(|| format!("opening {dest}"))?;
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "ddb-archiver-lambda".to_string());
    tracing::info!(dest = %dest, format = %settings.format, function = name, "initialised");
    Ok(Function::new(settings, sink, name)?)
}
