//! Gzip JSON lines: one object per change with the archive columns, the four JSON
//! columns nested as the JSON text that arrived, the time as ISO-8601 UTC milliseconds.

use std::io::Write;

use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::model::ChangeRecord;

/// Gzip level used for archive files. With zlib-rs, level 5 searches shorter match
/// chains than 6: the JSON lines repeat each image (in its column and in `record`), so
/// the long matches are found all the same and files grow by little (see
/// docs/performance.md).
pub const GZIP_LEVEL: u32 = 5;

/// `2026-01-01T00:00:00.000Z` for a millisecond epoch timestamp.
pub fn iso_millis(epoch_ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(epoch_ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => epoch_ms.to_string(),
    }
}

/// Appends `s` as a JSON string.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends one change as a JSON line (with the trailing newline).
pub fn write_line(out: &mut Vec<u8>, r: &ChangeRecord) {
    out.extend_from_slice(b"{\"event_id\":");
    push_json_str(out, &r.event_id);
    out.extend_from_slice(b",\"event_name\":\"");
    out.extend_from_slice(r.event_name.as_str().as_bytes());
    out.extend_from_slice(b"\",\"table_name\":");
    push_json_str(out, &r.table_name);
    out.extend_from_slice(b",\"sequence_number\":");
    push_json_str(out, &r.sequence_number);
    out.extend_from_slice(b",\"approximate_creation_time\":\"");
    out.extend_from_slice(iso_millis(r.approximate_creation_time_ms).as_bytes());
    out.extend_from_slice(b"\",\"stream_view_type\":");
    match &r.stream_view_type {
        Some(v) => push_json_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"size_bytes\":");
    match r.size_bytes {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(if r.ttl_delete {
        b",\"ttl_delete\":true,\"keys\":"
    } else {
        b",\"ttl_delete\":false,\"keys\":"
    });
    out.extend_from_slice(r.keys.as_bytes());
    out.extend_from_slice(b",\"new_image\":");
    out.extend_from_slice(r.new_image.as_deref().unwrap_or("null").as_bytes());
    out.extend_from_slice(b",\"old_image\":");
    out.extend_from_slice(r.old_image.as_deref().unwrap_or("null").as_bytes());
    out.extend_from_slice(b",\"record\":");
    out.extend_from_slice(r.record.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Gzips JSON lines text deterministically (no name, no modification time).
pub fn gzip(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(text.len() / 4),
        Compression::new(GZIP_LEVEL),
    );
    enc.write_all(text)?;
    enc.finish()
}

/// Lines are handed to the compressor in chunks of about this many bytes, so the
/// uncompressed text of a file is never held whole.
const CHUNK_BYTES: usize = 64 * 1024;

/// Encodes changes as gzip JSON lines.
pub fn encode(records: &[ChangeRecord]) -> std::io::Result<Vec<u8>> {
    let text_bytes: usize = records.iter().map(ChangeRecord::approx_bytes).sum();
    // JSON lines of changes compress to about a sixth; start at a fifth.
    let mut enc = GzEncoder::new(
        Vec::with_capacity(text_bytes / 5),
        Compression::new(GZIP_LEVEL),
    );
    let mut chunk = Vec::with_capacity(2 * CHUNK_BYTES);
    for r in records {
        write_line(&mut chunk, r);
        if chunk.len() >= CHUNK_BYTES {
            enc.write_all(&chunk)?;
            chunk.clear();
        }
    }
    enc.write_all(&chunk)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_635_734_407_123), "2021-11-01T02:40:07.123Z");
    }
}
