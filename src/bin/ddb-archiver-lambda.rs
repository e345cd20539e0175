//! The `ddb-archiver-lambda` function: a thin shell over [`ddb_archiver::lambda`] on the
//! Lambda runtime. Settings (from environment variables) are validated and the S3
//! client is built once, at init; each invocation archives one DynamoDB Streams or
//! Kinesis event and answers with `batchItemFailures`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::Context as _;
use bytes::Bytes;
use ddb_archiver::lambda::{self, Function};
use ddb_archiver::settings::Settings;

#[path = "common/settings.rs"]
mod settings;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{layers, service_fn, LambdaEvent, LambdaInvocation, Runtime};
use settings::SettingsArgs;

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
    let bodies = EventBodies::default();
    let handler_bodies = bodies.clone();
    let handler = service_fn(move |event: LambdaEvent<()>| {
        let function = Arc::clone(&function);
        let body = handler_bodies.take(&event.context.request_id);
        async move {
            let deadline =
                lambda::write_deadline(event.context.deadline(), std::time::SystemTime::now());
            let payload = body.ok_or("the invocation's event body was not kept")?;
            let outcome = function.handle(Vec::from(payload), deadline).await?;
            Ok::<_, lambda_runtime::Error>(outcome.response)
        }
    });
    Runtime::new(handler)
        .layer(TakeEventBody { bodies })
        .layer(layers::TracingLayer::new())
        .run()
        .await
}

/// Event bodies taken from invocations before the runtime parses them, by request ID.
#[derive(Clone, Default)]
struct EventBodies(Arc<Mutex<HashMap<String, Bytes>>>);

impl EventBodies {
    fn put(&self, request_id: String, body: Bytes) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(request_id, body);
    }

    fn take(&self, request_id: &str) -> Option<Bytes> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(request_id)
    }
}

/// Takes each invocation's body (the event's JSON text) and leaves `null` in its place:
/// the runtime then parses only `null` for the handler's `LambdaEvent<()>`, and the
/// archiver decodes the event in its own single pass, without a copy. Otherwise the
/// runtime would parse and copy the whole event (up to 6 MB) once more.
struct TakeEventBody {
    bodies: EventBodies,
}

impl<S> Layer<S> for TakeEventBody {
    type Service = TakeEventBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TakeEventBodyService {
            inner,
            bodies: self.bodies.clone(),
        }
    }
}

/// The service of [`TakeEventBody`].
struct TakeEventBodyService<S> {
    inner: S,
    bodies: EventBodies,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for TakeEventBodyService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let body = std::mem::replace(&mut invocation.body, Bytes::from_static(b"null"));
        self.bodies.put(invocation.context.request_id.clone(), body);
        self.inner.call(invocation)
    }
}

/// The settings from environment variables alone (the function has no flags).
fn settings_from_env() -> anyhow::Result<Settings> {
    use clap::{Args, FromArgMatches};
    let cmd = SettingsArgs::augment_args(clap::Command::new("ddb-archiver-lambda"));
    let matches = cmd
        .try_get_matches_from(["ddb-archiver-lambda"])
        .context("reading the settings from the environment")?;
    Ok(SettingsArgs::from_arg_matches(&matches)
        .context("reading the settings from the environment")?
        .to_settings())
}

async fn init() -> anyhow::Result<Function> {
    let settings = settings_from_env()?;
    let invalid = |e: ddb_archiver::settings::SettingsError| {
        anyhow::anyhow!("invalid settings: {}", settings::describe(&e, true))
    };
    let dest = lambda::validate_settings(&settings).map_err(invalid)?;
    let sink = ddb_archiver::sink::open(&dest, settings.kms_key_id.as_deref())
        .await
        .with_context(|| format!("opening {dest}"))?;
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "ddb-archiver-lambda".to_string());
    tracing::info!(dest = %dest, format = %settings.format, function = name, "initialised");
    Function::new(settings, sink, name).map_err(invalid)
}
