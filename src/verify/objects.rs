//! Objects: the checks of one raw data object or `_rejected/` object on its own (a raw
//! object's bytes must also be what encoding its records again gives), and of any
//! object's bytes against the checksum its store kept at upload.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::parquet::Structure;
use super::rows::{check_file, Extra};
use super::Reasons;
use crate::archive::reader::gunzip;
use crate::archive::source::StoredChecksum;
use crate::encode::record_set_digest;
use crate::model::hex::hex_digest;
use crate::model::key::DataKey;
use crate::model::ChangeRecord;
use crate::model::Format;
use crate::schema::{SchemaSet, TableSchema};

/// Compares bytes with a stored checksum: `Some(Ok)` when they match, `Some(Err)` with
/// the reason when not, `None` when it cannot be recomputed (a multipart checksum over
/// parts of another size than the archiver uploads).
pub fn compare_checksum(stored: &StoredChecksum, bytes: &[u8]) -> Option<Result<(), String>> {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let (want, got) = match stored {
        StoredChecksum::NotKept => return Some(Ok(())),
        StoredChecksum::Missing => {
            return Some(Err("no SHA-256 checksum was stored with it".to_string()))
        }
        StoredChecksum::Sha256(want) => (want.clone(), b64(Sha256::digest(bytes).as_slice())),
        StoredChecksum::Composite { sha256, parts } => {
            let part_size = crate::sink::s3::S3Options::default().part_size.max(1);
            if bytes.len().div_ceil(part_size) != *parts {
                return None;
            }
            let mut h = Sha256::new();
            for part in bytes.chunks(part_size) {
                h.update(Sha256::digest(part));
            }
            (sha256.clone(), b64(h.finalize().as_slice()))
        }
    };
    Some(if want == got {
        Ok(())
    } else {
        Err(format!(
            "its bytes do not match the SHA-256 checksum stored at upload ({got} is not {want})"
        ))
    })
}

/// Whether a raw data object's bytes were compared with a fresh encoding of its
/// records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reencoding {
    /// They were (and any difference is among the object's reasons).
    Compared,
    /// They were not, for this reason (an object of another archiver version, or with
    /// typed columns and no schema known).
    NotCompared(String),
    /// The object is already bad for other reasons: its records may be incomplete.
    AlreadyBad,
}

/// What checking a raw data object found besides its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChecked {
    /// Rows read.
    pub rows: u64,
    /// Whether its bytes were compared with a fresh encoding of its records.
    pub reencoding: Reencoding,
}

/// Checks a raw data object: it reads, every row is its record's, the rows belong to
/// the object's partition, the sequence numbers and digest in its name are its
/// content's, and (see [`reencode`]) its bytes are what encoding its records again
/// gives.
pub fn check_raw(
    name: &DataKey,
    bytes: Vec<u8>,
    location: &str,
    schemas: Option<&SchemaSet>,
    reasons: &mut Reasons,
) -> RawChecked {
    // The bytes go to the decoder: what is compared later is their size and digest —
    // of the uncompressed text for gzip JSON lines, so that another deflate (an older
    // release's level, another zlib) is no difference; the gzip CRC guards the rest.
    let stored = match name.format {
        Format::Parquet => (bytes.len(), <[u8; 32]>::from(Sha256::digest(&bytes))),
        Format::JsonlGz => {
            // The archiver's gzip header: deflate, no flags, no time, extra flags of
            // its level, OS unknown. The header is outside the CRC the decoder checks.
            let canonical = bytes.len() >= 10
                && bytes[..8] == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]
                && matches!(bytes[8], 0 | 2 | 4)
                && bytes[9] == 255;
            if !canonical {
                reasons.push(format!(
                    "its gzip header is not the archiver's: {:02x?}",
                    &bytes[..bytes.len().min(10)]
                ));
            }
            let mut hash = Sha256::new();
            let mut text = flate2::read::MultiGzDecoder::new(bytes.as_slice());
            match std::io::copy(&mut text, &mut hash) {
                Ok(n) => (
                    usize::try_from(n).unwrap_or(usize::MAX),
                    hash.finalize().into(),
                ),
                // The reader below names what is wrong with it.
                Err(_) => (0, [0; 32]),
            }
        }
    };
    let mut changes: Vec<ChangeRecord> = Vec::new();
    let extra = Extra::of(&name.table, schemas, None);
    let read = check_file(
        name.format,
        bytes,
        location,
        extra,
        reasons,
        |c, reasons| {
            let row = c.row;
            if row.table_name != name.table {
                reasons.push(format!(
                    "row {}: table_name {:?} is not the partition's table {:?}",
                    c.number, row.table_name, name.table
                ));
            }
            let day = chrono::DateTime::from_timestamp_millis(row.time_ms).map(|t| t.date_naive());
            if day != Some(name.date) {
                reasons.push(format!(
                    "row {}: approximate_creation_time {} is not on the partition's day {}",
                    c.number,
                    crate::encode::jsonl::iso_millis(row.time_ms),
                    name.date
                ));
            }
            match row.into_change() {
                Ok(change) => changes.push(change),
                Err(why) => reasons.push(format!("row {}: {why}", c.number)),
            }
        },
    );
    let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
        reasons.push("holds no rows");
        return RawChecked {
            rows: read.rows,
            reencoding: Reencoding::AlreadyBad,
        };
    };
    if first.sequence_number != name.first_sequence || last.sequence_number != name.last_sequence {
        reasons.push(format!(
            "its rows run from sequence number {} to {}, its name says {} to {}",
            first.sequence_number, last.sequence_number, name.first_sequence, name.last_sequence
        ));
    }
    let digest = record_set_digest(&changes);
    if digest != name.digest {
        reasons.push(format!(
            "its records' digest is {digest}, its name says {}",
            name.digest
        ));
    }
    let reencoding = if reasons.is_empty() {
        let schema = schemas.and_then(|s| s.get(&name.table));
        reencode(
            name.format,
            &changes,
            read.structure.as_ref(),
            schema,
            stored,
            reasons,
        )
    } else {
        Reencoding::AlreadyBad
    };
    RawChecked {
        rows: read.rows,
        reencoding,
    }
}

/// Encodes a raw object's records again and requires the very bytes it holds (their
/// size and SHA-256, `stored`): names and bytes follow from the records. Gzip JSON lines
/// always, as their uncompressed text (any release's lines are the same text, whatever
/// deflate compressed them); Parquet files unless their footer says that another version
/// wrote them (its
/// [`crate::encode::parquet::VERSION_KEY`] and `created_by`: either naming this build
/// is enough), with the table's `schema` when the file has typed columns (none known:
/// not compared).
pub fn reencode(
    format: Format,
    changes: &[ChangeRecord],
    structure: Option<&Structure>,
    schema: Option<&TableSchema>,
    stored: (usize, [u8; 32]),
    reasons: &mut Reasons,
) -> Reencoding {
    let fresh = match format {
        Format::JsonlGz => {
            let mut text = Vec::new();
            for c in changes {
                crate::encode::jsonl::write_line(&mut text, c);
            }
            Ok(text)
        }
        Format::Parquet => {
            let this = env!("CARGO_PKG_VERSION");
            let version = structure.and_then(|s| s.version.as_deref());
            let created_by = structure.and_then(|s| s.created_by.as_deref());
            // Either mark of this build is enough, and a file that names no other
            // writer is compared too: one changed byte can garble one mark, or drop
            // both (a field header), but not make both name another version.
            let writer = crate::encode::parquet::writer_properties();
            let ours = version == Some(this) || created_by == Some(writer.created_by());
            let other = version.is_some_and(|v| v != this)
                || created_by.is_some_and(|c| c != writer.created_by());
            if other && !ours {
                return Reencoding::NotCompared(format!(
                    "written by {}, not ddb-archiver {this}",
                    version.map_or_else(
                        || created_by.unwrap_or_default().to_string(),
                        |v| format!("ddb-archiver {v}")
                    )
                ));
            }
            let standard = crate::model::columns::STANDARD_COLUMNS.len();
            let typed = structure
                .and_then(|s| s.columns)
                .is_some_and(|n| n > standard);
            if typed && schema.is_none() {
                return Reencoding::NotCompared(
                    "typed columns, and no schema of its table (--schemas)".to_string(),
                );
            }
            let schema = if typed { schema } else { None };
            crate::encode::parquet::encode(changes, schema).map_err(|e| e.to_string())
        }
    };
    match fresh {
        Err(e) => reasons.push(format!("its records cannot be encoded again: {e}")),
        Ok(fresh) => {
            let same = fresh.len() == stored.0 && Sha256::digest(&fresh).as_slice() == stored.1;
            if !same {
                reasons.push("its bytes differ from a fresh encoding of its records");
            }
        }
    }
    Reencoding::Compared
}

/// The fields of a `_rejected/` line, in order.
pub const REJECTED_FIELDS: [&str; 6] = [
    "source",
    "index",
    "event_id",
    "sequence_number",
    "reason",
    "record",
];

/// Checks a `_rejected/` object: it decompresses, the digest in its name is the
/// digest of its lines, and every line is a JSON object with the documented fields.
pub fn check_rejected(digest: &str, bytes: &[u8], location: &str, reasons: &mut Reasons) {
    let text = match gunzip(bytes, location) {
        Ok(t) => t,
        Err(e) => {
            reasons.push(e.reason);
            return;
        }
    };
    let got = hex_digest(Sha256::digest(&text).as_slice());
    if got != digest {
        reasons.push(format!(
            "its lines' digest is {got}, its name says {digest}"
        ));
    }
    let mut lines = 0;
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        lines += 1;
        if let Err(why) = check_rejected_line(line) {
            reasons.push(format!("line {}: {why}", i + 1));
        }
    }
    if lines == 0 {
        reasons.push("holds no lines");
    }
}

fn check_rejected_line(line: &[u8]) -> Result<(), String> {
    use serde_json::Value;
    let value: serde_json::Map<String, Value> =
        serde_json::from_slice(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let keys: Vec<&str> = value.keys().map(String::as_str).collect();
    let mut want = REJECTED_FIELDS.to_vec();
    want.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    if sorted != want {
        return Err(format!(
            "fields are [{}], not [{}]",
            keys.join(", "),
            REJECTED_FIELDS.join(", ")
        ));
    }
    let ok = value["source"].is_string()
        && value["index"].is_u64()
        && (value["event_id"].is_string() || value["event_id"].is_null())
        && (value["sequence_number"].is_string() || value["sequence_number"].is_null())
        && value["reason"].is_string();
    if ok {
        Ok(())
    } else {
        Err("a field has the wrong type".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_whole_and_composite() {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let bytes = b"archive object".to_vec();
        let good = StoredChecksum::Sha256(b64(Sha256::digest(&bytes).as_slice()));
        assert_eq!(compare_checksum(&good, &bytes), Some(Ok(())));
        let mut flipped = bytes.clone();
        flipped[3] ^= 1;
        assert!(matches!(compare_checksum(&good, &flipped), Some(Err(_))));
        assert!(matches!(
            compare_checksum(&StoredChecksum::Missing, &bytes),
            Some(Err(_))
        ));
        let one_part = StoredChecksum::Composite {
            sha256: b64(Sha256::digest(Sha256::digest(&bytes)).as_slice()),
            parts: 1,
        };
        assert_eq!(compare_checksum(&one_part, &bytes), Some(Ok(())));
        let other_parts = StoredChecksum::Composite {
            sha256: String::new(),
            parts: 3,
        };
        assert_eq!(compare_checksum(&other_parts, &bytes), None);
    }

    #[test]
    fn rejected_lines_need_the_documented_fields() {
        let good = br#"{"source":"f","index":0,"event_id":null,"sequence_number":"1","reason":"r","record":{"x":1}}"#;
        assert_eq!(check_rejected_line(good), Ok(()));
        let missing = br#"{"source":"f","index":0,"event_id":null,"reason":"r","record":{}}"#;
        assert!(check_rejected_line(missing).is_err());
        let wrong = br#"{"source":"f","index":-1,"event_id":null,"sequence_number":"1","reason":"r","record":{}}"#;
        assert!(check_rejected_line(wrong).is_err());
    }
}
