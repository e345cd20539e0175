//! Replay, in process: events → archive (the real pipeline writing a local directory,
//! both formats and mixed) → replay → the same records, in per-item order, once each.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ddb_archiver::archive::filter::Filter;
use ddb_archiver::archive::source::LocalDirSource;
use ddb_archiver::model::EventName;
use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::replay::{replay, Output, ReplayError, ReplayOptions, ReplaySummary};
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use serde_json::Value;

const TABLE: &str = "orders";

/// One generated change, with what the filters look at.
#[derive(Debug, Clone)]
struct Gen {
    event_id: String,
    name: EventName,
    key: String,
    time_ms: i64,
    seq: u128,
    text: String,
}

/// `items` items changing over three UTC days: an INSERT, MODIFYs, maybe a REMOVE,
/// several changes sharing one second, sequence numbers crossing a digit boundary.
fn generate(items: usize, per_item: usize) -> Vec<Gen> {
    let start_ms: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z
    let mut out = Vec::new();
    let mut seq: u128 = 99_999_999_999_999_999_950;
    for step in 0..per_item {
        for item in 0..items {
            seq += 1;
            let name = match step {
                0 => EventName::Insert,
                s if s + 1 == per_item && item % 3 == 0 => EventName::Remove,
                _ => EventName::Modify,
            };
            // Every step moves ~18 hours; items of one step share whole seconds.
            let time_ms = start_ms + step as i64 * 64_800_000 + (item as i64 / 4) * 1000;
            let key = format!(
                r#"{{"pk":{{"S":"ITEM#{item}"}},"sk":{{"N":"{}"}}}}"#,
                item % 2
            );
            let image = |v: usize| {
                format!(
                    r#"{{"pk":{{"S":"ITEM#{item}"}},"sk":{{"N":"{}"}},"v":{{"N":"{v}"}},"big":{{"N":"1E+125"}},"b":{{"B":"AAEC"}},"s":{{"S":"é\u0000 \"q\""}}}}"#,
                    item % 2
                )
            };
            let images = match name {
                EventName::Insert => format!(r#""NewImage":{}"#, image(step)),
                EventName::Modify => format!(
                    r#""NewImage":{},"OldImage":{}"#,
                    image(step),
                    image(step - 1)
                ),
                EventName::Remove => format!(r#""OldImage":{}"#, image(step - 1)),
            };
            let secs = time_ms / 1000;
            let text = format!(
                r#"{{"eventID":"ev-{item}-{step}","eventName":"{}","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{{"ApproximateCreationDateTime":{secs},"Keys":{key},{images},"SequenceNumber":"{seq}","SizeBytes":123,"StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"}}"#,
                name.as_str()
            );
            out.push(Gen {
                event_id: format!("ev-{item}-{step}"),
                name,
                key,
                time_ms: secs * 1000,
                seq,
                text,
            });
        }
    }
    out
}

fn event_doc(records: &[Gen]) -> String {
    let parts: Vec<&str> = records.iter().map(|g| g.text.as_str()).collect();
    format!("{{\"Records\":[{}]}}", parts.join(","))
}

fn settings(dir: &std::path::Path, format: Format) -> Settings {
    Settings {
        dest: dir.display().to_string(),
        format,
        table: None,
        max_file_bytes: 1 << 20,
        max_file_records: 17,
        max_file_age_secs: 300,
        max_buffer_bytes: 1 << 24,
        kms_key_id: None,
        schemas: None,
    }
}

/// Archives `records` as Lambda events of `batch` records in `format`.
async fn archive(dir: &std::path::Path, format: Format, records: &[Gen], batch: usize) {
    let sink = Arc::new(LocalDirSink::new(dir));
    let mut a = Archiver::new(&settings(dir, format), sink).unwrap();
    for (i, chunk) in records.chunks(batch).enumerate() {
        assert!(
            a.ingest(event_doc(chunk).as_bytes(), &format!("batch-{i}"))
                .await
        );
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
    assert_eq!(summary.archived, records.len());
}

fn options(filter: Filter) -> ReplayOptions {
    ReplayOptions {
        table: TABLE.to_string(),
        filter,
        batch_size: 7,
        resume_after: None,
        checkpoint: None,
        skip_corrupt: false,
        memory_budget: ddb_archiver::replay::DEFAULT_MEMORY_BUDGET,
        include_baseline: false,
    }
}

/// Runs a replay into memory: the events' lines and the summary.
async fn run(
    dir: &std::path::Path,
    opts: &ReplayOptions,
) -> Result<(Vec<String>, ReplaySummary), Box<ddb_archiver::replay::ReplayFailure>> {
    let mut buf: Vec<u8> = Vec::new();
    let summary = {
        let mut out = Output::Lines(&mut buf);
        replay(
            &LocalDirSource::new(dir),
            opts,
            &mut out,
            &indicatif::ProgressBar::hidden(),
        )
        .await?
    };
    let text = String::from_utf8(buf).unwrap();
    Ok((text.lines().map(str::to_string).collect(), summary))
}

/// The records of the event lines, in order, checking each event's bounds.
fn records_of(lines: &[String], batch_size: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let recs = v["Records"].as_array().unwrap();
        assert!(
            !recs.is_empty() && recs.len() <= batch_size,
            "{}",
            recs.len()
        );
        assert!(line.len() <= ddb_archiver::archive::emit::MAX_PAYLOAD_BYTES);
        out.extend(recs.iter().cloned());
    }
    out
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_string())
        .collect()
}

/// The expected replay order of generated changes: time, then sequence number.
fn stream_order(mut gens: Vec<Gen>) -> Vec<Gen> {
    gens.sort_by_key(|g| (g.time_ms, g.seq));
    gens
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn round_trip_both_formats_and_mixed() {
    let gens = generate(23, 6);
    let half = gens.len() / 2;
    let layouts: [(&str, Format, Format); 3] = [
        ("parquet", Format::Parquet, Format::Parquet),
        ("jsonl.gz", Format::JsonlGz, Format::JsonlGz),
        ("mixed", Format::Parquet, Format::JsonlGz),
    ];
    for (label, first, second) in layouts {
        let dir = tempfile::tempdir().unwrap();
        archive(dir.path(), first, &gens[..half], 10).await;
        archive(dir.path(), second, &gens[half..], 10).await;
        // A part of a batch archived again (a retry after a bisected batch): other files,
        // the same events.
        let again = &gens[half - 5..half + 8];
        archive(dir.path(), Format::JsonlGz, again, 4).await;

        let (lines, summary) = run(dir.path(), &options(Filter::default())).await.unwrap();
        let got = records_of(&lines, 7);
        let want: Vec<Value> = stream_order(gens.clone())
            .iter()
            .map(|g| serde_json::from_str(&g.text).unwrap())
            .collect();
        assert_eq!(got.len(), gens.len(), "{label}: each record once");
        assert_eq!(got, want, "{label}: the same records in stream order");
        // Per item, the changes come in the order they were made.
        let mut per_item: HashMap<String, Vec<String>> = HashMap::new();
        for r in &got {
            per_item
                .entry(r["dynamodb"]["Keys"].to_string())
                .or_default()
                .push(r["eventID"].as_str().unwrap().to_string());
        }
        for g in &gens {
            let item = per_item
                .get(&serde_json::from_str::<Value>(&g.key).unwrap().to_string())
                .unwrap();
            let mine: Vec<&String> = item
                .iter()
                .filter(|id| id.starts_with(&g.event_id[..g.event_id.rfind('-').unwrap() + 1]))
                .collect();
            let mut sorted = mine.clone();
            sorted.sort_by_key(|id| id.rsplit('-').next().unwrap().parse::<usize>().unwrap());
            assert_eq!(mine, sorted, "{label}: item order");
        }
        assert_eq!(summary.duplicates_dropped, again.len(), "{label}");
        assert_eq!(summary.records_emitted, gens.len(), "{label}");
        assert_eq!(summary.records_read, gens.len() + again.len(), "{label}");
        assert_eq!(summary.partitions, 5, "{label}");
        assert_eq!(summary.events, lines.len(), "{label}");

        // Replay output is archive input: archiving it again gives the same rows back.
        let second = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalDirSink::new(second.path()));
        let mut a = Archiver::new(&settings(second.path(), Format::Parquet), sink).unwrap();
        assert!(a.ingest(lines.join("\n").as_bytes(), "replay-output").await);
        assert!(a.finish().await.is_clean());
        let (again_lines, _) = run(second.path(), &options(Filter::default()))
            .await
            .unwrap();
        assert_eq!(again_lines, lines, "{label}: re-archived replay");
    }
}

#[tokio::test]
async fn filters_select_exactly() {
    let gens = generate(17, 5);
    let dir = tempfile::tempdir().unwrap();
    let half = gens.len() / 2;
    archive(dir.path(), Format::Parquet, &gens[..half], 9).await;
    archive(dir.path(), Format::JsonlGz, &gens[half..], 9).await;
    // Bounds that fall exactly on records' times: --from takes them, --to does not.
    let mut times: Vec<i64> = gens.iter().map(|g| g.time_ms).collect();
    times.sort();
    let lo = times[times.len() / 5];
    let hi = times[times.len() * 3 / 4];
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let key3 = gens
        .iter()
        .find(|g| g.event_id == "ev-3-0")
        .unwrap()
        .key
        .clone();
    // The same key, attributes in another order and spaced out.
    let key3_reordered = r#"{ "sk": {"N": "1"}, "pk": {"S": "ITEM#3"} }"#;
    type Pred = Box<dyn Fn(&Gen) -> bool>;
    let cases: Vec<(&str, Filter, Pred)> = vec![
        (
            "from",
            Filter::new(Some(at(lo)), None, None, &[]).unwrap(),
            Box::new(move |g| g.time_ms >= lo),
        ),
        (
            "to",
            Filter::new(None, Some(at(hi)), None, &[]).unwrap(),
            Box::new(move |g| g.time_ms < hi),
        ),
        (
            "from-to",
            Filter::new(Some(at(lo)), Some(at(hi)), None, &[]).unwrap(),
            Box::new(move |g| g.time_ms >= lo && g.time_ms < hi),
        ),
        (
            "one day",
            Filter::new(
                Some(t("2026-01-02T00:00:00Z")),
                Some(t("2026-01-03T00:00:00Z")),
                None,
                &[],
            )
            .unwrap(),
            Box::new(|g| (1_767_312_000_000..1_767_398_400_000).contains(&g.time_ms)),
        ),
        (
            "key",
            Filter::new(None, None, Some(&key3), &[]).unwrap(),
            Box::new(move |g| g.event_id.starts_with("ev-3-")),
        ),
        (
            "key reordered",
            Filter::new(None, None, Some(key3_reordered), &[]).unwrap(),
            Box::new(|g| g.event_id.starts_with("ev-3-")),
        ),
        (
            "insert",
            Filter::new(None, None, None, &[EventName::Insert]).unwrap(),
            Box::new(|g| g.name == EventName::Insert),
        ),
        (
            "modify,remove",
            Filter::new(None, None, None, &[EventName::Modify, EventName::Remove]).unwrap(),
            Box::new(|g| g.name != EventName::Insert),
        ),
        (
            "all at once",
            Filter::new(
                Some(at(lo)),
                Some(at(hi)),
                Some(r#"{"pk":{"S":"ITEM#6"},"sk":{"N":"0"}}"#),
                &[EventName::Modify],
            )
            .unwrap(),
            Box::new(move |g| {
                g.time_ms >= lo
                    && g.time_ms < hi
                    && g.event_id.starts_with("ev-6-")
                    && g.name == EventName::Modify
            }),
        ),
        (
            "empty range",
            Filter::new(Some(t("2030-01-01T00:00:00Z")), None, None, &[]).unwrap(),
            Box::new(|_| false),
        ),
    ];
    for (label, filter, pred) in cases {
        let want: Vec<String> = stream_order(gens.iter().filter(|g| pred(g)).cloned().collect())
            .into_iter()
            .map(|g| g.event_id)
            .collect();
        let (lines, summary) = run(dir.path(), &options(filter)).await.unwrap();
        let got = ids(&records_of(&lines, 7));
        assert_eq!(got, want, "{label}");
        assert_eq!(summary.records_emitted, want.len(), "{label}");
        if label != "empty range" {
            assert!(
                !want.is_empty() && want.len() < gens.len(),
                "{label}: a real selection"
            );
        }
    }
}

#[tokio::test]
async fn corrupt_files_stop_or_are_skipped() {
    let gens = generate(9, 4);
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::Parquet, &gens, 10).await;
    let day = dir.path().join(TABLE).join("year=2026/month=01/day=02");
    assert!(day.is_dir());
    let bad_parquet = day.join("0-1-badbadbadbadbad0.parquet");
    std::fs::write(&bad_parquet, b"PAR1 this is not parquet").unwrap();
    // A gzip JSON lines file cut short.
    let good = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let gz = ddb_archiver::encode::jsonl::gzip(b"{\"event_id\":\"x\",\"event_name\":\"INSERT\"}\n")
        .unwrap();
    let bad_gz = day.join("0-2-badbadbadbadbad1.json.gz");
    std::fs::write(&bad_gz, &gz[..gz.len() / 2]).unwrap();
    assert!(good.exists());

    let err = run(dir.path(), &options(Filter::default()))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err.error, ReplayError::Corrupt(_)), "{message}");
    assert!(
        message.contains(&bad_gz.display().to_string())
            || message.contains(&bad_parquet.display().to_string()),
        "{message}"
    );

    let mut opts = options(Filter::default());
    opts.skip_corrupt = true;
    let (lines, summary) = run(dir.path(), &opts).await.unwrap();
    assert_eq!(ids(&records_of(&lines, 7)).len(), gens.len());
    let mut skipped: Vec<String> = summary
        .corrupt_files
        .iter()
        .map(|f| f.location.clone())
        .collect();
    skipped.sort();
    let mut want = vec![
        bad_gz.display().to_string(),
        bad_parquet.display().to_string(),
    ];
    want.sort();
    assert_eq!(skipped, want);
    assert!(summary.render_text().contains("SKIPPED corrupt file"));
}

#[tokio::test]
async fn resume_and_checkpoint_and_spill() {
    let gens = generate(13, 5);
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::JsonlGz, &gens, 8).await;
    let (all_lines, _) = run(dir.path(), &options(Filter::default())).await.unwrap();
    let all = ids(&records_of(&all_lines, 7));

    // A tiny memory budget spills sorted runs and gives the same events.
    let mut small = options(Filter::default());
    small.memory_budget = 2_000;
    let (spilled_lines, summary) = run(dir.path(), &small).await.unwrap();
    assert!(summary.spilled_runs > 3, "{}", summary.spilled_runs);
    assert_eq!(spilled_lines, all_lines);

    // Resume after an event in the middle: exactly the rest.
    let cut = all.len() / 3;
    let mut opts = options(Filter::default());
    opts.resume_after = Some(all[cut].clone());
    let (lines, summary) = run(dir.path(), &opts).await.unwrap();
    assert_eq!(ids(&records_of(&lines, 7)), all[cut + 1..].to_vec());
    assert_eq!(summary.skipped_before_resume, cut + 1);

    // A checkpoint file: written after each event, read back on the next run.
    let ck_dir = tempfile::tempdir().unwrap();
    let ck = ck_dir.path().join("replay.checkpoint");
    std::fs::write(&ck, format!("{}\n", all[cut])).unwrap();
    let mut opts = options(Filter::default());
    opts.checkpoint = Some(ck.clone());
    let (lines, summary) = run(dir.path(), &opts).await.unwrap();
    assert_eq!(ids(&records_of(&lines, 7)), all[cut + 1..].to_vec());
    assert_eq!(
        std::fs::read_to_string(&ck).unwrap().trim(),
        all.last().unwrap()
    );
    assert_eq!(
        summary.last_event_id.as_deref(),
        all.last().map(String::as_str)
    );

    // An unknown resume point is an error, not a silent empty replay.
    let mut opts = options(Filter::default());
    opts.resume_after = Some("no-such-event".into());
    let err = run(dir.path(), &opts).await.unwrap_err();
    assert!(matches!(err.error, ReplayError::ResumeNotFound(_)), "{err}");
}

/// A copy of `g` as Kinesis Data Streams can deliver it again: the same event, its own
/// sequence number and a time `later_ms` later.
fn kinesis_copy(g: &Gen, seq: u128, later_ms: i64) -> Gen {
    let time_ms = g.time_ms + later_ms;
    let text = g
        .text
        .replace(
            &format!(r#""ApproximateCreationDateTime":{},"#, g.time_ms / 1000),
            &format!(r#""ApproximateCreationDateTime":{},"#, time_ms / 1000),
        )
        .replace(
            &format!(r#""SequenceNumber":"{}""#, g.seq),
            &format!(r#""SequenceNumber":"{seq}""#),
        );
    assert_ne!(text, g.text);
    Gen {
        time_ms,
        seq,
        text,
        ..g.clone()
    }
}

#[tokio::test]
async fn copies_with_other_sequence_numbers_and_times_are_replayed_once() {
    let gens = generate(11, 5);
    // The third step's changes (2026-01-03T00:00) again, 19 hours later, after the
    // fourth step's changes of the same items (18:00) and still on the same day, with
    // higher sequence numbers; one more copy only a second later, among other items'
    // changes.
    let step2: Vec<&Gen> = gens.iter().filter(|g| g.event_id.ends_with("-2")).collect();
    assert_eq!(step2.len(), 11);
    let mut copies: Vec<Gen> = step2
        .iter()
        .enumerate()
        .map(|(i, g)| kinesis_copy(g, 900_000_000_000_000_000_000 + i as u128, 68_400_000))
        .collect();
    copies.push(kinesis_copy(step2[0], 1_000, 1_000));
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::Parquet, &gens, 10).await;
    archive(dir.path(), Format::JsonlGz, &copies, 4).await;
    let want: Vec<String> = stream_order(gens.clone())
        .into_iter()
        .map(|g| g.event_id)
        .collect();
    for budget in [ddb_archiver::replay::DEFAULT_MEMORY_BUDGET, 2_000] {
        let mut opts = options(Filter::default());
        opts.memory_budget = budget;
        let (lines, summary) = run(dir.path(), &opts).await.unwrap();
        let got = records_of(&lines, 7);
        assert_eq!(ids(&got), want, "budget {budget}");
        // Each event as its earliest copy: the first sequence number.
        for r in &got {
            let id = r["eventID"].as_str().unwrap();
            let g = gens.iter().find(|g| g.event_id == id).unwrap();
            assert_eq!(r, &serde_json::from_str::<Value>(&g.text).unwrap(), "{id}");
        }
        assert_eq!(summary.duplicates_dropped, copies.len(), "budget {budget}");
        assert_eq!(summary.records_read, gens.len() + copies.len());
        if budget == 2_000 {
            assert!(summary.spilled_runs > 3, "{}", summary.spilled_runs);
        }
    }
    // From a time between the first copies and the late ones: the late copies are not
    // changes of their own, so they are not replayed.
    let from = t("2026-01-03T12:00:00Z");
    let filter = Filter::new(Some(from), None, None, &[]).unwrap();
    let (lines, summary) = run(dir.path(), &options(filter)).await.unwrap();
    let want: Vec<String> = stream_order(gens.clone())
        .into_iter()
        .filter(|g| g.time_ms >= from.timestamp_millis())
        .map(|g| g.event_id)
        .collect();
    assert_eq!(ids(&records_of(&lines, 7)), want);
    assert_eq!(summary.duplicates_dropped, 11);
}
