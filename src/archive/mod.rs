//! Archive: reading back what the archiver wrote, in one place.
//!
//! [`source`] lists and reads objects (a local directory or S3); [`reader`] turns one
//! object, Parquet or gzip JSON lines, into rows or Arrow batches ([`jsonl_row`] parses
//! a JSON line); [`order`] is the one external sorter, in stream order within a memory
//! budget, and [`copies`] keeps one copy of each event wherever its copies sort;
//! [`filter`] selects by time, item key and event name; [`emit`] wraps records back into
//! stream events, and [`export_row`] reads baseline and export rows (sequence number
//! `"0"`, an export line as their record); [`manifest`] reads and writes the compacted
//! layer's manifests and their digests; [`coverage`] lists and checks the coverage
//! records of baselines and gap repairs. Object keys and partitions are
//! [`crate::model::key`]'s. Every command reads the archive through these.

pub mod copies;
pub mod coverage;
pub mod emit;
pub mod export_row;
pub mod filter;
pub mod jsonl_row;
pub mod manifest;
pub mod order;
pub mod reader;
pub mod source;
