//! Archive: reading back what the archiver wrote, in one place.
//!
//! [`source`] lists and reads objects (a local directory or S3); [`key`] builds and
//! parses object keys and partitions; [`reader`] turns one object, Parquet or gzip JSON
//! lines, into rows or Arrow batches; [`order`] puts changes in stream order and drops
//! duplicates within a memory budget. Replay, schema inference and every later reader
//! go through these.

pub mod emit;
pub mod filter;
pub mod jsonl_row;
pub mod manifest;
pub mod order;
pub mod reader;
pub mod source;
