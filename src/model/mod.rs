//! Model: the types and rules every stage and command shares, at the bottom of the
//! crate. It imports nothing of the crate; everything else may import it.
//!
//! - [`change`]: a decoded change ([`ChangeRecord`], [`EventName`], [`SourceKind`]),
//!   its JSON texts kept byte-exact as [`JsonText`] ([`text`]);
//! - [`format`]: the two file formats;
//! - [`key`]: object keys and the Hive partition path, built and parsed strictly in one
//!   place, and table-name validation;
//! - [`columns`]: the archive's column names;
//! - [`order`]: stream order;
//! - [`item`]: an item's key attributes as one canonical text;
//! - [`hex`]: hex digests;
//! - [`location`]: a local directory or an `s3://` prefix;
//! - [`coverage`]: coverage records (baseline and repair) and the representation of
//!   rows that did not come from a stream.

pub mod change;
pub mod columns;
pub mod coverage;
pub mod format;
pub mod hex;
pub mod item;
pub mod key;
pub mod location;
pub mod order;
pub mod text;

pub use change::{ChangeRecord, EventName, SourceKind};
pub use format::Format;
pub use location::{Location, LocationError};
pub use text::JsonText;
