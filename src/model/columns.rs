//! Columns: the names of the archive's columns, shared by the encoders, the readers, the
//! SQL generators and the compacted layer.

/// Name of the column listing the typed columns whose value did not fit.
pub const TYPE_ERRORS_COLUMN: &str = "type_errors";

/// The standard archive columns, in order (the Parquet encoder writes them in this order).
pub const STANDARD_COLUMNS: [&str; 12] = [
    "event_id",
    "event_name",
    "table_name",
    "sequence_number",
    "approximate_creation_time",
    "stream_view_type",
    "size_bytes",
    "ttl_delete",
    "keys",
    "new_image",
    "old_image",
    "record",
];

/// The Hive partition columns of every archive table.
pub const PARTITION_COLUMNS: [&str; 3] = ["year", "month", "day"];

/// The column of compacted files that holds their compaction version.
pub const VERSION_COLUMN: &str = "compaction_version";
