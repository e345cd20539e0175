//! Restore without servers: archives written by the real pipeline into a directory, the
//! state at T computed and compared with one computed here, spilled and not; import
//! files end to end; the archives and settings that are refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::*;
use crate::archive::source::LocalDirSource;
use crate::model::Format;
use crate::pipeline::Archiver;
use crate::settings::Settings;
use crate::sink::local::LocalDirSink;

const TABLE: &str = "orders";
const START_MS: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z

/// One generated change.
#[derive(Debug, Clone)]
struct Gen {
    name: &'static str,
    key: String,
    time_ms: i64,
    image: Option<String>,
    text: String,
}

/// Changes of `items` items over about three days: INSERT, MODIFYs, REMOVEs and
/// re-INSERTs, in stream order; keys written with their attributes in either order.
fn generate(items: usize, changes: usize, view: &str) -> Vec<Gen> {
    let mut out = Vec::new();
    let mut alive = vec![false; items];
    let mut rng: u64 = 7;
    for i in 0..changes {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let item = (rng >> 33) as usize % items;
        let name = if !alive[item] {
            "INSERT"
        } else if (rng >> 20).is_multiple_of(5) {
            "REMOVE"
        } else {
            "MODIFY"
        };
        alive[item] = name != "REMOVE";
        // ~3 days; every fourth change shares the previous one's millisecond.
        let time_ms = START_MS + (i as i64 - (i % 4 == 1) as i64) * 259_200_000 / changes as i64;
        let key = if i % 2 == 0 {
            format!(
                r#"{{"pk":{{"S":"ITEM#{item}"}},"sk":{{"N":"{}"}}}}"#,
                item % 3
            )
        } else {
            format!(
                r#"{{"sk":{{"N":"{}"}},"pk":{{"S":"ITEM#{item}"}}}}"#,
                item % 3
            )
        };
        let image = format!(
            r#"{{"pk":{{"S":"ITEM#{item}"}},"sk":{{"N":"{}"}},"v":{{"N":"1234567890123456789012345678901234567{}"}},"b":{{"B":"AAEC/w=="}},"m":{{"M":{{"ü":{{"SS":["x","y"]}},"l":{{"L":[{{"NULL":true}},{{"BOOL":false}}]}}}}}}}}"#,
            item % 3,
            i % 10
        );
        let image = (name != "REMOVE").then_some(image);
        let images = match (&image, view) {
            (Some(img), "NEW_AND_OLD_IMAGES" | "NEW_IMAGE") => format!(r#""NewImage":{img},"#),
            _ => String::new(),
        };
        let text = format!(
            r#"{{"eventID":"ev{i:05}","eventName":"{name}","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{{"ApproximateCreationDateTime":{}.{:03},"Keys":{key},{images}"SequenceNumber":"{}","SizeBytes":99,"StreamViewType":"{view}"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"}}"#,
            time_ms / 1000,
            time_ms % 1000,
            99_999_999_999_999_999_900u128 + i as u128,
        );
        out.push(Gen {
            name,
            key,
            time_ms,
            image,
            text,
        });
    }
    out
}

/// An archiver writing into `dir`.
fn archiver(dir: &std::path::Path, format: Format) -> Archiver {
    let settings = Settings {
        dest: dir.display().to_string(),
        format,
        table: None,
        max_file_bytes: 1 << 20,
        max_file_records: 23,
        max_file_age_secs: 300,
        max_buffer_bytes: 1 << 24,
        kms_key_id: None,
        schemas: None,
    };
    Archiver::new(&settings, Arc::new(LocalDirSink::new(dir))).unwrap()
}

async fn archive(dir: &std::path::Path, format: Format, records: &[Gen]) {
    let mut a = archiver(dir, format);
    for (i, chunk) in records.chunks(40).enumerate() {
        let parts: Vec<&str> = chunk.iter().map(|g| g.text.as_str()).collect();
        let doc = format!("{{\"Records\":[{}]}}", parts.join(","));
        assert!(a.ingest(doc.as_bytes(), &format!("batch-{i}")).await);
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
}

/// The state at T computed the plain way: every change in order, a map of all keys.
fn expected(records: &[Gen], as_of_ms: i64) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for g in records.iter().filter(|g| g.time_ms <= as_of_ms) {
        let key = crate::model::item::canonical_key(&g.key).unwrap();
        match &g.image {
            Some(img) if g.name != "REMOVE" => state.insert(key, img.clone()),
            _ => state.remove(&key),
        };
    }
    state
}

fn key_of(image: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(image).unwrap();
    crate::model::item::canonical_key(&format!(r#"{{"pk":{},"sk":{}}}"#, v["pk"], v["sk"])).unwrap()
}

async fn compute(
    dir: &std::path::Path,
    as_of_ms: i64,
    key: Option<&Filter>,
    budget: usize,
) -> Result<(BTreeMap<String, String>, RestoreSummary), RestoreError> {
    let mut summary = RestoreSummary::default();
    let input = state::StateInput {
        table: TABLE,
        as_of_ms,
        key,
        memory_budget: budget,
    };
    let file = state::compute(
        &LocalDirSource::new(dir),
        &input,
        &mut summary,
        &indicatif::ProgressBar::hidden(),
    )
    .await?;
    let got = file
        .images()?
        .map(|l| {
            let l = l.unwrap();
            (key_of(&l), l)
        })
        .collect();
    Ok((got, summary))
}

#[tokio::test]
async fn state_at_t_matches_an_independent_computation() {
    let records = generate(40, 600, "NEW_AND_OLD_IMAGES");
    let dir = tempfile::tempdir().unwrap();
    let half = records.len() / 2;
    archive(dir.path(), Format::Parquet, &records[..half]).await;
    archive(dir.path(), Format::JsonlGz, &records[half..]).await;
    // Part of it archived a second time, in the other format.
    archive(dir.path(), Format::Parquet, &records[350..430]).await;
    let day2 = START_MS + 12 * 3_600_000; // 2026-01-02T00:00:00Z
    let times = [
        START_MS - 1,
        records[100].time_ms,
        day2 - 1,
        day2,
        records[417].time_ms - 1,
        records.last().unwrap().time_ms + 1,
    ];
    for as_of in times {
        let want = expected(&records, as_of);
        for budget in [usize::MAX, 4_000] {
            let (got, summary) = compute(dir.path(), as_of, None, budget).await.unwrap();
            assert_eq!(got, want, "T={as_of} budget={budget}");
            assert_eq!(summary.items, want.len());
            let selected = records.iter().filter(|g| g.time_ms <= as_of).count();
            let dups = records[350..430]
                .iter()
                .filter(|g| g.time_ms <= as_of)
                .count();
            assert_eq!(summary.duplicates_dropped, dups, "T={as_of}");
            assert_eq!(summary.changes_selected, selected + dups);
            assert_eq!(summary.keys, summary.items + summary.absent_deleted);
            if budget == 4_000 && selected > 100 {
                assert!(summary.spilled_runs > 2, "{}", summary.spilled_runs);
            }
        }
    }
    // Days after T's are not read.
    let (_, summary) = compute(dir.path(), day2 - 1, None, usize::MAX)
        .await
        .unwrap();
    assert_eq!(summary.partitions, 1);
    assert!(summary.partitions_after_as_of > 0);

    // One item, with its key's members in another order than in most records.
    let filter = Filter::new(
        None,
        None,
        Some(r#"{"sk":{"N":"1"},"pk":{"S":"ITEM#7"}}"#),
        &[],
    )
    .unwrap();
    let last = records.last().unwrap().time_ms;
    let (got, summary) = compute(dir.path(), last, Some(&filter), 4_000)
        .await
        .unwrap();
    let want: BTreeMap<_, _> = expected(&records, last)
        .into_iter()
        .filter(|(k, _)| k == r#"{"pk":{"S":"ITEM#7"},"sk":{"N":"1"}}"#)
        .collect();
    assert_eq!(got, want);
    assert_eq!(summary.keys, 1);
}

#[tokio::test]
async fn archives_without_new_images_are_refused() {
    for view in ["KEYS_ONLY", "OLD_IMAGE"] {
        let dir = tempfile::tempdir().unwrap();
        archive(dir.path(), Format::JsonlGz, &generate(5, 20, view)).await;
        let e = compute(dir.path(), START_MS + 10 * 86_400_000, None, usize::MAX)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(view) && text.contains("no new images"),
            "{text}"
        );
    }
    // A NEW_AND_OLD_IMAGES record whose NewImage is missing.
    let mut records = generate(5, 20, "NEW_AND_OLD_IMAGES");
    let last = records.iter().rposition(|g| g.name != "REMOVE").unwrap();
    let img = records[last].image.clone().unwrap();
    records[last].text = records[last]
        .text
        .replace(&format!(r#""NewImage":{img},"#), "");
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::Parquet, &records).await;
    let e = compute(dir.path(), START_MS + 10 * 86_400_000, None, usize::MAX)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no NewImage"), "{e}");
    // Before that change, the state can be given.
    assert!(
        compute(dir.path(), records[last].time_ms - 1, None, usize::MAX)
            .await
            .is_ok()
    );
}

fn options(as_of: DateTime<Utc>) -> RestoreOptions {
    RestoreOptions {
        table: TABLE.into(),
        as_of,
        key: None,
        to_table: "orders-restored".into(),
        dry_run: false,
        allow_existing: false,
        allow_rejected: false,
        // These archives hold stream changes only; tests of the baseline rule set it.
        allow_incomplete: true,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        concurrency: DEFAULT_CONCURRENCY,
        retry: write::default_policy(),
        import: None,
    }
}

fn import_target(dir: &std::path::Path) -> (Target, ImportOptions) {
    let target = Target::Import {
        sink: Arc::new(LocalDirSink::new(dir)),
        existing: Box::new(LocalDirSource::new(dir)),
        client: None,
    };
    let opts = ImportOptions {
        location: Location::Local(dir.to_path_buf()),
        start: false,
        partition_key: None,
        file_bytes: 2_000,
    };
    (target, opts)
}

#[tokio::test]
async fn import_files_hold_the_state() {
    let records = generate(30, 300, "NEW_IMAGE");
    let src = tempfile::tempdir().unwrap();
    archive(src.path(), Format::JsonlGz, &records).await;
    let out = tempfile::tempdir().unwrap();
    let (target, import) = import_target(out.path());
    let as_of_ms = records[200].time_ms;
    let mut opts = options(DateTime::from_timestamp_millis(as_of_ms).unwrap());
    opts.import = Some(import);
    let source = LocalDirSource::new(src.path());
    let progress = indicatif::ProgressBar::hidden();
    let summary = restore(&source, target, &opts, &progress).await.unwrap();
    assert!(summary.import_files.len() > 1);
    assert_eq!(
        import_state(&summary.import_files),
        expected(&records, as_of_ms)
    );
    // A second run refuses the filled prefix, and converges with --allow-existing.
    let (target, import) = import_target(out.path());
    opts.import = Some(import);
    let e = restore(&source, target, &opts, &progress)
        .await
        .unwrap_err();
    assert!(matches!(e.error, RestoreError::NotEmpty(_)), "{}", e.error);
    let (target, import) = import_target(out.path());
    opts.import = Some(import);
    opts.allow_existing = true;
    let again = restore(&source, target, &opts, &progress).await.unwrap();
    assert_eq!(again.import_files, summary.import_files);
    assert_eq!(again.import_prefix, summary.import_prefix);
    assert_eq!(
        again.import_files_already_present,
        summary.import_files.len()
    );
    // Another T into the same location: a sub-prefix of its own, which holds exactly its
    // state; the first run's files are not part of it.
    let later_ms = records[260].time_ms;
    let (target, import) = import_target(out.path());
    let mut later = options(DateTime::from_timestamp_millis(later_ms).unwrap());
    later.import = Some(import);
    later.allow_existing = true;
    let other = restore(&source, target, &later, &progress).await.unwrap();
    assert_ne!(other.import_prefix, summary.import_prefix);
    for (run, as_of) in [(&summary, as_of_ms), (&other, later_ms)] {
        let prefix = std::path::PathBuf::from(run.import_prefix.clone().unwrap());
        assert!(prefix.starts_with(out.path()));
        let mut files: Vec<String> = std::fs::read_dir(&prefix)
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        files.sort();
        assert_eq!(files, run.import_files);
        assert_eq!(import_state(&files), expected(&records, as_of));
    }
    assert_ne!(
        expected(&records, later_ms),
        expected(&records, as_of_ms),
        "the two runs hold two states"
    );
    // A file in the run's sub-prefix that the run did not write is refused before an
    // import could take it.
    let prefix = std::path::PathBuf::from(other.import_prefix.clone().unwrap());
    std::fs::write(prefix.join("part-99999-stray.json.gz"), b"x").unwrap();
    let (target, import) = import_target(out.path());
    later.import = Some(import);
    let e = restore(&source, target, &later, &progress)
        .await
        .unwrap_err();
    assert!(
        matches!(e.error, RestoreError::ForeignImportFiles { count: 1, .. }),
        "{}",
        e.error
    );
    assert!(
        e.error.to_string().contains("part-99999-stray"),
        "{}",
        e.error
    );
}

/// The items of import files, by key.
fn import_state(files: &[String]) -> BTreeMap<String, String> {
    let mut got = BTreeMap::new();
    for f in files {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&std::fs::read(f).unwrap()[..])
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines() {
            let image = line
                .strip_prefix("{\"Item\":")
                .and_then(|l| l.strip_suffix('}'))
                .unwrap();
            got.insert(key_of(image), image.to_string());
        }
    }
    got
}

#[tokio::test]
async fn bad_settings_fail_before_reading() {
    let src = tempfile::tempdir().unwrap();
    archive(src.path(), Format::JsonlGz, &generate(3, 10, "NEW_IMAGE")).await;
    let source = LocalDirSource::new(src.path());
    let progress = indicatif::ProgressBar::hidden();
    let now = Utc::now();
    let cases: Vec<(RestoreOptions, &str)> = vec![
        (
            options(now + chrono::Duration::hours(1)),
            "invalid --as-of: ",
        ),
        (
            RestoreOptions {
                key: Some(r#"{"pk":1}"#.into()),
                ..options(now)
            },
            "invalid --key: ",
        ),
        (
            RestoreOptions {
                table: "no-such-table".into(),
                ..options(now)
            },
            "no archived partitions of table no-such-table",
        ),
        (
            RestoreOptions {
                table: "bad/name".into(),
                ..options(now)
            },
            "invalid --table: ",
        ),
    ];
    for (mut opts, want) in cases {
        let out = tempfile::tempdir().unwrap();
        let (target, import) = import_target(out.path());
        opts.import = Some(import);
        let e = restore(&source, target, &opts, &progress)
            .await
            .unwrap_err();
        assert!(e.error.to_string().starts_with(want), "{}", e.error);
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}

/// A change record of `table` (or of none) that the archiver rejects: its key has an
/// unknown attribute type.
fn rejected_record(id: &str, arn_table: Option<&str>, time: &str) -> String {
    let arn = arn_table.map_or(String::new(), |t| {
        format!(r#","eventSourceARN":"arn:aws:dynamodb:eu-west-1:1:table/{t}/stream/x""#)
    });
    format!(
        r#"{{"eventID":"{id}","eventName":"REMOVE","eventSource":"aws:dynamodb"{arn},"dynamodb":{{"ApproximateCreationDateTime":{time},"Keys":{{"pk":{{"Q":"x"}}}},"SequenceNumber":"5","StreamViewType":"NEW_IMAGE"}}}}"#
    )
}

#[tokio::test]
async fn rejected_records_of_the_table_are_refused_unless_allowed() {
    let records = generate(10, 60, "NEW_IMAGE");
    let src = tempfile::tempdir().unwrap();
    archive(src.path(), Format::JsonlGz, &records).await;
    let rejected_at = START_MS / 1000 + 3_600;
    let doc = format!(
        r#"{{"Records":[{},{},{},{},{}]}}"#,
        rejected_record("rej-ours", Some(TABLE), &rejected_at.to_string()),
        rejected_record("rej-other", Some("other"), &rejected_at.to_string()),
        rejected_record("rej-unknown", None, &rejected_at.to_string()),
        rejected_record("rej-no-time", Some(TABLE), "\"soon\""),
        rejected_record(
            "rej-later",
            Some(TABLE),
            &(rejected_at + 86_400 * 30).to_string()
        ),
    );
    let mut a = archiver(src.path(), Format::JsonlGz);
    assert!(a.ingest(doc.as_bytes(), "rejects").await);
    assert_eq!(a.finish().await.rejected, 5);
    let source = LocalDirSource::new(src.path());
    let progress = indicatif::ProgressBar::hidden();
    let last_ms = records.last().unwrap().time_ms;
    let cases = [
        // Before the rejected changes: only the one without a readable time counts.
        (rejected_at * 1000 - 1, 1, 0, vec!["rej-no-time"]),
        (
            last_ms,
            3,
            1,
            vec!["rej-ours", "rej-unknown", "rej-no-time"],
        ),
    ];
    for (as_of_ms, count, unknown, named) in cases {
        let out = tempfile::tempdir().unwrap();
        let (target, import) = import_target(out.path());
        let mut opts = options(DateTime::from_timestamp_millis(as_of_ms).unwrap());
        opts.import = Some(import);
        let e = restore(&source, target, &opts, &progress)
            .await
            .unwrap_err();
        let RestoreError::Rejected { found, .. } = &e.error else {
            panic!("{}", e.error);
        };
        assert_eq!((found.count, found.unknown_table), (count, unknown));
        let text = e.error.to_string();
        for id in &named {
            assert!(text.contains(id), "{text}");
        }
        for id in ["rej-other", "rej-later"] {
            assert!(!text.contains(id), "{text}");
        }
        assert!(
            text.contains("--allow-rejected") && text.contains("nothing was written"),
            "{text}"
        );
        assert!(text.contains("_rejected/year="), "{text}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

        let (target, import) = import_target(out.path());
        opts.import = Some(import);
        opts.allow_rejected = true;
        let summary = restore(&source, target, &opts, &progress).await.unwrap();
        assert_eq!(summary.rejected.count, count);
        assert_eq!(
            import_state(&summary.import_files),
            expected(&records, as_of_ms)
        );
        assert!(summary.render_text().contains("rejected records"));
    }
}

/// A copy of `g` as Kinesis Data Streams can deliver it again: the same event, its own
/// (higher) sequence number and a later time.
fn kinesis_copy(g: &Gen, seq: u128, later_ms: i64) -> Gen {
    let time_ms = g.time_ms + later_ms;
    let old_time = format!(
        r#""ApproximateCreationDateTime":{}.{:03},"#,
        g.time_ms / 1000,
        g.time_ms % 1000
    );
    let new_time = format!(
        r#""ApproximateCreationDateTime":{}.{:03},"#,
        time_ms / 1000,
        time_ms % 1000
    );
    let start = g.text.find(r#""SequenceNumber":""#).unwrap() + r#""SequenceNumber":""#.len();
    let end = start + g.text[start..].find('"').unwrap();
    let text = format!("{}{seq}{}", &g.text[..start], &g.text[end..]).replace(&old_time, &new_time);
    assert_ne!(text, g.text);
    Gen {
        time_ms,
        text,
        ..g.clone()
    }
}

#[tokio::test]
async fn copies_with_other_sequence_numbers_and_times_are_dropped_wherever_they_sort() {
    let records = generate(12, 300, "NEW_AND_OLD_IMAGES");
    // Every fifth change again, five hours later (about 20 changes between the copies),
    // with a higher sequence number.
    let copies: Vec<Gen> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 0)
        .map(|(i, g)| kinesis_copy(g, 500_000_000_000_000_000_000 + i as u128, 18_000_000))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::Parquet, &records).await;
    archive(dir.path(), Format::JsonlGz, &copies).await;
    let last = records.last().unwrap().time_ms;
    let mut copies_as_changes = records.clone();
    copies_as_changes.extend(copies.iter().cloned());
    copies_as_changes.sort_by_key(|g| g.time_ms);
    for as_of in [records[150].time_ms, last, last + 20_000_000] {
        let want = expected(&records, as_of);
        assert_ne!(
            expected(&copies_as_changes, as_of),
            want,
            "the copies would change the state"
        );
        for budget in [usize::MAX, 4_000] {
            let (got, summary) = compute(dir.path(), as_of, None, budget).await.unwrap();
            assert_eq!(got, want, "T={as_of} budget={budget}");
            let dups = copies.iter().filter(|g| g.time_ms <= as_of).count();
            assert_eq!(
                summary.duplicates_dropped, dups,
                "T={as_of} budget={budget}"
            );
            if budget == 4_000 {
                assert!(summary.spilled_runs > 2, "{}", summary.spilled_runs);
            }
        }
    }
}

#[tokio::test]
async fn a_late_copy_of_an_insert_does_not_undo_the_modify_after_it() {
    // INSERT v1 (event A, sequence 1), MODIFY v2 (event B, sequence 2), then a copy of A
    // with sequence 3: the state is v2.
    let records: Vec<Gen> = generate(1, 8, "NEW_IMAGE")
        .into_iter()
        .filter(|g| g.name != "REMOVE")
        .take(2)
        .collect();
    assert_eq!((records[0].name, records[1].name), ("INSERT", "MODIFY"));
    let copy = kinesis_copy(&records[0], 900_000_000_000_000_000_000, 3_600_000);
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::JsonlGz, &records).await;
    archive(dir.path(), Format::JsonlGz, std::slice::from_ref(&copy)).await;
    for budget in [usize::MAX, 1] {
        let (got, summary) = compute(dir.path(), copy.time_ms, None, budget)
            .await
            .unwrap();
        assert_eq!(got, expected(&records, copy.time_ms), "budget {budget}");
        assert_eq!(got.values().next(), records[1].image.as_ref());
        assert_eq!(summary.duplicates_dropped, 1);
    }
}

/// `g` as a TTL delete: a REMOVE by DynamoDB's own service principal.
fn ttl_delete(g: &Gen) -> Gen {
    assert_eq!(g.name, "REMOVE");
    Gen {
        text: g.text.replacen(
            '{',
            r#"{"userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},"#,
            1,
        ),
        ..g.clone()
    }
}

/// `g` with another item name and event ID, for a second generated history.
fn renamed(g: &Gen, item: &str, event: &str) -> Gen {
    let r = |s: &str| s.replace("ITEM#", item).replace(r#""eventID":"ev"#, event);
    Gen {
        key: r(&g.key),
        image: g.image.as_deref().map(r),
        text: r(&g.text),
        ..g.clone()
    }
}

#[tokio::test]
async fn hard_shapes_give_the_state_of_an_independent_computation() {
    // Items with REMOVEs, re-INSERTs and TTL deletes; one item with 10,000 changes.
    let mut records: Vec<Gen> = generate(30, 900, "NEW_AND_OLD_IMAGES")
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if g.name == "REMOVE" && i % 2 == 0 {
                ttl_delete(g)
            } else {
                g.clone()
            }
        })
        .collect();
    assert!(records.iter().any(|g| g.text.contains("principalId")));
    let hot: Vec<Gen> = generate(1, 10_000, "NEW_IMAGE")
        .iter()
        .map(|g| renamed(g, "HOT#", r#""eventID":"hot"#))
        .collect();
    records.extend(hot.iter().cloned());
    records.sort_by_key(|g| g.time_ms);
    // Copies: every 7th change archived again in another object, the same change; every
    // 11th as a Kinesis copy with its own, higher sequence number, an hour later.
    let again: Vec<Gen> = records.iter().step_by(7).cloned().collect();
    let kinesis: Vec<Gen> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 11 == 3)
        .map(|(i, g)| kinesis_copy(g, 700_000_000_000_000_000_000 + i as u128, 3_600_000))
        .collect();
    // The same event twice with the same time and sequence number but another record
    // (its image differs): the copy with the lower SHA-256 of its record is kept.
    let last_of = |key: &str| {
        records
            .iter()
            .rposition(|g| g.key == key && g.name != "REMOVE")
            .unwrap()
    };
    let i = last_of(&records[records.len() - 5].key);
    use sha2::Digest as _;
    let sha = |t: &str| sha2::Sha256::digest(t.as_bytes());
    let other = (10..99)
        .map(|d| Gen {
            text: records[i].text.replace(
                r#""v":{"N":"1234567890123456789012345678901234567"#,
                &format!(r#""v":{{"N":"76543210987654321098765432109876543{d}"#),
            ),
            ..records[i].clone()
        })
        .find(|o| sha(&o.text) < sha(&records[i].text))
        .unwrap();
    let mut truth = records.clone();
    let img = &other.text[other.text.find(r#""NewImage":"#).unwrap() + 11..];
    let end = img.find(r#","SequenceNumber""#).unwrap();
    truth[i].image = Some(img[..end].to_string());
    assert_ne!(truth[i].image, records[i].image);

    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), Format::Parquet, &records).await;
    archive(dir.path(), Format::JsonlGz, &again).await;
    archive(dir.path(), Format::Parquet, &kinesis).await;
    archive(dir.path(), Format::JsonlGz, std::slice::from_ref(&other)).await;

    let hot_key = crate::model::item::canonical_key(&hot[0].key).unwrap();
    let last = records.last().unwrap().time_ms;
    for as_of in [
        records[200].time_ms,
        records[5_000].time_ms - 1,
        records[i].time_ms,
        last + 10_000_000,
    ] {
        let want = expected(&truth, as_of);
        let copies = again.iter().chain(&kinesis).chain([&other]);
        let dups = copies.filter(|g| g.time_ms <= as_of).count();
        for budget in [usize::MAX, 64_000] {
            let (got, summary) = compute(dir.path(), as_of, None, budget).await.unwrap();
            assert_eq!(got.len(), want.len(), "T={as_of} budget={budget}");
            assert_eq!(got, want, "T={as_of} budget={budget}");
            assert_eq!(
                summary.duplicates_dropped, dups,
                "T={as_of} budget={budget}"
            );
            assert_eq!(summary.keys, summary.items + summary.absent_deleted);
            if budget == usize::MAX {
                assert_eq!(summary.spilled_runs, 0);
            } else if as_of > records[5_000].time_ms {
                assert!(summary.spilled_runs > 2, "{}", summary.spilled_runs);
            }
        }
        assert_eq!(
            want.contains_key(&hot_key),
            expected(&hot, as_of).contains_key(&hot_key)
        );
    }
}
