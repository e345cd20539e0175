//! Change: one decoded change record of a DynamoDB table, as every stage and command
//! sees it.

use super::text::JsonText;

/// The kind of change a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventName {
    /// A new item was written.
    Insert,
    /// An existing item was changed.
    Modify,
    /// An item was deleted.
    Remove,
}

impl EventName {
    /// The name as DynamoDB spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Insert => "INSERT",
            EventName::Modify => "MODIFY",
            EventName::Remove => "REMOVE",
        }
    }

    /// Parses `INSERT`, `MODIFY` or `REMOVE`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INSERT" => Some(EventName::Insert),
            "MODIFY" => Some(EventName::Modify),
            "REMOVE" => Some(EventName::Remove),
            _ => None,
        }
    }
}

/// Where a record came from, as the stream names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A DynamoDB Streams record (Lambda event or `GetRecords`).
    DynamoDbStream,
    /// A Kinesis Data Streams record whose data is a DynamoDB change.
    Kinesis,
    /// A baseline or repair row made from a DynamoDB export or Scan (see
    /// [`super::coverage`]). Kinesis duplicate rules do not apply to it.
    Export,
}

/// One decoded change, ready to be routed and archived. The JSON fields hold the
/// received JSON text with insignificant whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// `eventID` of the change.
    pub event_id: String,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: EventName,
    /// Source table name.
    pub table_name: String,
    /// Stream sequence number (Kinesis: `kinesis.sequenceNumber`), decimal digits.
    pub sequence_number: String,
    /// The change's own time, milliseconds since the Unix epoch (UTC).
    pub approximate_creation_time_ms: i64,
    /// `StreamViewType`, when present.
    pub stream_view_type: Option<String>,
    /// `SizeBytes`, when present.
    pub size_bytes: Option<i64>,
    /// A REMOVE made by the TTL service.
    pub ttl_delete: bool,
    /// DynamoDB JSON of `Keys`.
    pub keys: JsonText,
    /// DynamoDB JSON of `NewImage`.
    pub new_image: Option<JsonText>,
    /// DynamoDB JSON of `OldImage`.
    pub old_image: Option<JsonText>,
    /// The change record as received (Kinesis: the decoded DynamoDB change payload).
    pub record: JsonText,
    /// Whether the record arrived through DynamoDB Streams or Kinesis.
    pub source: SourceKind,
    /// 0-based position of the record in its document's `Records` array (stream order
    /// within a Lambda batch).
    pub index: usize,
}

impl ChangeRecord {
    /// Gives the JSON texts buffers of their own, so that the input they arrived in can
    /// be freed while the change waits in the buffer.
    pub fn detach(&mut self) {
        self.keys.detach();
        self.record.detach();
        for image in [&mut self.new_image, &mut self.old_image]
            .into_iter()
            .flatten()
        {
            image.detach();
        }
    }

    /// Approximate in-memory size, used by the buffer's byte thresholds.
    pub fn approx_bytes(&self) -> usize {
        self.event_id.len()
            + self.table_name.len()
            + self.sequence_number.len()
            + self.keys.len()
            + self.new_image.as_ref().map_or(0, |t| t.len())
            + self.old_image.as_ref().map_or(0, |t| t.len())
            + self.record.len()
            + self.stream_view_type.as_ref().map_or(0, String::len)
            + 64
    }
}
