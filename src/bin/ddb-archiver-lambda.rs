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
    let role = std::env::var("ARCHIVE_ROLE").unwrap_or_default();
    match role.trim() {
        "" | "archive" => {
            let function = match init().await {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "initialisation failed");
                    return Err(e.into());
                }
            };
            serve(function).await
        }
        "maintenance" => {
            let maintenance = match init_maintenance().await {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "initialisation failed");
                    return Err(e.into());
                }
            };
            serve_maintenance(maintenance).await
        }
        other => {
            let e = format!(
                "invalid setting ARCHIVE_ROLE: {other:?} is not `archive` or `maintenance`"
            );
            tracing::error!(error = e, "initialisation failed");
            Err(e.into())
        }
    }
}

/// The maintenance function's settings, from environment variables alone.
#[derive(Debug, Clone, clap::Args)]
struct MaintenanceArgs {
    /// The raw archive: `s3://bucket/prefix`.
    #[arg(long, env = "ARCHIVE_SOURCE")]
    source: String,
    /// The compacted layer: `s3://bucket/prefix`.
    #[arg(long, env = "COMPACT_DEST")]
    dest: String,
    /// Directory of schema files.
    #[arg(long, env = "ARCHIVE_SCHEMAS")]
    schemas: Option<std::path::PathBuf>,
    /// Days back from today looked at on each run.
    #[arg(long, env = "COMPACT_LOOKBACK_DAYS", default_value_t = 7)]
    lookback_days: u32,
    /// Hours after a day's end before it is compacted.
    #[arg(long, env = "COMPACT_SETTLE_HOURS", default_value_t = 26)]
    settle_hours: u32,
    /// Hours after a day's end after which a day not compacted is counted as overdue.
    #[arg(long, env = "COMPACT_ALARM_AFTER_HOURS", default_value_t = 74)]
    alarm_after_hours: u32,
    /// A compacted file ends once it reaches about this many bytes.
    #[arg(long, env = "COMPACT_MAX_FILE_BYTES", default_value_t = ddb_archiver::compact::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: usize,
    /// Days back from today verified by a verify run.
    #[arg(long, env = "VERIFY_DAYS", default_value_t = 8)]
    verify_days: u32,
    /// Bytes of changes held in memory while sorting a day.
    #[arg(long, env = "COMPACT_MEMORY_BUDGET", default_value_t = ddb_archiver::compact::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,
    /// Hours the files of a superseded version stay before a later run deletes them.
    #[arg(long, env = "COMPACT_GRACE_PERIOD_HOURS", default_value_t = ddb_archiver::compact::DEFAULT_GRACE_PERIOD.as_secs() / 3600)]
    grace_period_hours: u64,
    /// Seconds before the invocation's deadline after which no new day is started.
    #[arg(long, env = "COMPACT_DEADLINE_MARGIN_SECS", default_value_t = ddb_archiver::maintenance::DEFAULT_DEADLINE_MARGIN.as_secs())]
    deadline_margin_secs: u64,
    /// Where the baseline actions may read exports (`s3://bucket/prefix/`); without it
    /// they are refused.
    #[arg(long, env = "BASELINE_EXPORTS")]
    baseline_exports: Option<String>,
    /// Format of the objects a baseline writes into the raw archive.
    #[arg(long, env = "ARCHIVE_FORMAT", value_enum, default_value = "parquet")]
    format: settings::FormatArg,
    /// KMS key of the objects a baseline writes (SSE-KMS).
    #[arg(long, env = "ARCHIVE_KMS_KEY_ID")]
    kms_key_id: Option<String>,
}

/// The maintenance function and, with `BASELINE_EXPORTS`, its baseline settings.
type MaintenanceParts = (
    ddb_archiver::maintenance::Maintenance,
    Option<ddb_archiver::maintenance::baseline::BaselineTarget>,
);

async fn init_maintenance() -> anyhow::Result<MaintenanceParts> {
    use clap::{Args, FromArgMatches};
    use ddb_archiver::model::Location;
    let cmd = MaintenanceArgs::augment_args(clap::Command::new("ddb-archiver-maintenance"));
    let matches = cmd
        .try_get_matches_from(["ddb-archiver-maintenance"])
        .context("reading the settings from the environment")?;
    let args = MaintenanceArgs::from_arg_matches(&matches)
        .context("reading the settings from the environment")?;
    let source = Location::parse(&args.source)
        .map_err(|e| anyhow::anyhow!("invalid setting ARCHIVE_SOURCE: {e}"))?;
    let dest = Location::parse(&args.dest)
        .map_err(|e| anyhow::anyhow!("invalid setting COMPACT_DEST: {e}"))?;
    if source == dest {
        anyhow::bail!("invalid setting COMPACT_DEST: it is ARCHIVE_SOURCE; the compacted layer needs a place of its own");
    }
    if args.max_file_bytes == 0 || args.memory_budget == 0 {
        anyhow::bail!("invalid setting COMPACT_MAX_FILE_BYTES / COMPACT_MEMORY_BUDGET: must be greater than 0");
    }
    let schemas = ddb_archiver::schema::SchemaSet::load_optional(args.schemas.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid setting ARCHIVE_SCHEMAS: {e}"))?;
    let target = match args.baseline_exports.as_deref() {
        None => None,
        Some(exports) => {
            let exports = Location::parse(exports)
                .map_err(|e| anyhow::anyhow!("invalid setting BASELINE_EXPORTS: {e}"))?;
            let settings = ddb_archiver::settings::Settings {
                dest: args.source.clone(),
                format: args.format.into(),
                kms_key_id: args.kms_key_id.clone(),
                schemas: args.schemas.clone(),
                ..ddb_archiver::settings::Settings::default()
            };
            settings
                .validate()
                .map_err(|e| anyhow::anyhow!("invalid baseline setting: {e}"))?;
            Some(ddb_archiver::maintenance::baseline::BaselineTarget {
                exports,
                schemas: schemas.clone(),
                sink: ddb_archiver::sink::open(&source, args.kms_key_id.as_deref()).await?,
                settings,
            })
        }
    };
    let settings = ddb_archiver::maintenance::MaintenanceSettings {
        lookback_days: args.lookback_days,
        settle_hours: args.settle_hours,
        alarm_after_hours: args.alarm_after_hours,
        verify_days: args.verify_days,
        deadline_margin: std::time::Duration::from_secs(args.deadline_margin_secs),
        compact: ddb_archiver::compact::CompactOptions {
            schemas,
            max_file_bytes: args.max_file_bytes,
            memory_budget: args.memory_budget,
            grace_period: std::time::Duration::from_secs(
                args.grace_period_hours.saturating_mul(3600),
            ),
            ..Default::default()
        },
    };
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "ddb-archiver-maintenance".to_string());
    tracing::info!(source = %source, dest = %dest, function = name, "maintenance initialised");
    let maintenance = ddb_archiver::maintenance::Maintenance {
        source: ddb_archiver::archive::source::open_location(&source).await,
        dest: ddb_archiver::archive::source::open_location(&dest).await,
        sink: ddb_archiver::sink::open(&dest, None).await?,
        settings,
        function_name: name,
    };
    Ok((maintenance, target))
}

/// Runs the maintenance function on the Lambda runtime: each event is
/// `{"action":"compact"}` or `{"action":"verify"}` from a schedule, or a baseline
/// action from the baseline workflow; the answer is the run's report.
async fn serve_maintenance(parts: Arc<MaintenanceParts>) -> Result<(), lambda_runtime::Error> {
    let handler = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let parts = Arc::clone(&parts);
        async move {
            let (maintenance, target) = parts.as_ref();
            let payload = serde_json::to_vec(&event.payload)?;
            // A deadline already past at the start is a local emulator's: no limit.
            let (deadline, now) = (event.context.deadline(), std::time::SystemTime::now());
            let deadline =
                (deadline > now).then(|| chrono::DateTime::<chrono::Utc>::from(deadline));
            let report = maintenance
                .handle_with(&payload, chrono::Utc::now(), deadline, target.as_ref())
                .await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(&report)?)
        }
    });
    Runtime::new(handler)
        .layer(layers::TracingLayer::new())
        .run()
        .await
}

/// Runs the function on the Lambda runtime (the Runtime API named by
/// `AWS_LAMBDA_RUNTIME_API`) until the runtime stops: the handler, the layer that takes
/// each event's body before the runtime parses it, and the tracing layer.
async fn serve(function: Arc<Function>) -> Result<(), lambda_runtime::Error> {
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

#[cfg(test)]
mod tests {
    //! The real `lambda_runtime` stack of [`serve`], driven through a local Runtime API
    //! on loopback with a large event: a runtime upgrade that changes the order of the
    //! layers or how the body is parsed fails here, not in production.

    use super::*;
    use ddb_archiver::archive::reader::{self, Projection};
    use ddb_archiver::model::Format;
    use ddb_archiver::sink::local::LocalDirSink;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

    /// A DynamoDB Streams event of `n` INSERTs with images of about 1 KB.
    fn big_event(n: usize) -> String {
        let pad = "x".repeat(1000);
        let records: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"eventID":"ev{i}","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{{"ApproximateCreationDateTime":1767225600,"Keys":{{"pk":{{"S":"k{i}"}}}},"NewImage":{{"pk":{{"S":"k{i}"}},"n":{{"N":"12345678901234567890123456789012345678"}},"pad":{{"S":"{pad}"}}}},"SequenceNumber":"{}","SizeBytes":1100,"StreamViewType":"NEW_IMAGE"}},"eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/big_table/stream/2026-01-01T00:00:00.000"}}"#,
                    1_000_000 + i
                )
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    /// One HTTP/1.1 request: method, path and body.
    async fn read_request(
        conn: &mut BufReader<tokio::net::TcpStream>,
    ) -> Option<(String, String, Vec<u8>)> {
        let mut line = String::new();
        if conn.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            conn.read_line(&mut header).await.ok()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok()?;
                }
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await.ok()?;
        Some((method, path, body))
    }

    /// A Runtime API that hands out `event` once, sends what the function answers (the
    /// path and body of its response or error) to `answers`, and then never hands out
    /// another event.
    async fn runtime_api(
        listener: TcpListener,
        event: String,
        answers: mpsc::Sender<(String, Vec<u8>)>,
    ) {
        let given = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (event, answers, given) = (event.clone(), answers.clone(), Arc::clone(&given));
            tokio::spawn(async move {
                let mut conn = BufReader::new(stream);
                while let Some((method, path, body)) = read_request(&mut conn).await {
                    let reply = if method == "GET" && path.ends_with("/invocation/next") {
                        if given.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             lambda-runtime-aws-request-id: {REQUEST_ID}\r\n\
                             lambda-runtime-deadline-ms: {deadline}\r\n\
                             lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:archiver\r\n\
                             content-length: {}\r\n\r\n{event}",
                            event.len()
                        )
                    } else {
                        let _ = answers.send((path, body)).await;
                        "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_string()
                    };
                    if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    #[tokio::test]
    async fn the_runtime_stack_archives_a_large_event() {
        let records = 5_000;
        let event = big_event(records);
        assert!(event.len() > 5_000_000, "{}", event.len());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(runtime_api(listener, event, tx));
        // The runtime reads its configuration from these variables (this test binary
        // runs no other test that reads them).
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", addr.to_string());
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "archiver");
        std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024");
        std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "1");
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            dest: dir.path().display().to_string(),
            ..Settings::default()
        };
        let sink = Arc::new(LocalDirSink::new(dir.path()));
        let function = Arc::new(Function::new(settings, sink, "archiver").unwrap());
        // The runtime runs until the answer arrives, then is dropped.
        let (path, body) = tokio::select! {
            stopped = serve(function) => panic!("the runtime stopped: {stopped:?}"),
            answer = tokio::time::timeout(std::time::Duration::from_secs(120), rx.recv()) => {
                answer.expect("the function answered within two minutes").unwrap()
            }
        };
        assert_eq!(
            path,
            format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
        let mut ids = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let name = p.display().to_string();
                let rows = reader::read_rows(
                    Format::of_key(&name).unwrap(),
                    std::fs::read(&p).unwrap(),
                    &name,
                    Projection::ALL,
                )
                .unwrap();
                for r in rows {
                    assert_eq!(r.table_name, "big_table");
                    assert!(r.record.contains("12345678901234567890123456789012345678"));
                    ids.push(r.event_id);
                }
            }
        }
        ids.sort_by_key(|id| id[2..].parse::<usize>().unwrap());
        let want: Vec<String> = (0..records).map(|i| format!("ev{i}")).collect();
        assert_eq!(ids, want);
    }
}
