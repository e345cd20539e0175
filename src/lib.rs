//! ddb-archiver: archive DynamoDB change streams as lossless, event-time-partitioned
//! gzip JSON lines or Parquet.
//!
//! The modules follow the data flow: [`decode`] → [`route`] → [`buffer`] → [`encode`] →
//! [`sink`] → [`report`], driven by [`pipeline`] with [`settings`]; [`lambda`] holds the
//! Lambda function's logic. [`archive`] reads back what was written, for [`replay`] and
//! [`schema`] inference, for [`restore`] of a table as it was at a time, and for
//! [`compact`], which makes the compacted layer, and [`verify`], which checks both
//! layers; [`coverage`] tells from when each table is complete; [`aws`] builds every
//! AWS client.

pub mod archive;
pub mod aws;
pub mod baseline;
pub mod buffer;
pub mod compact;
pub mod coverage;
pub mod decode;
pub mod encode;
pub mod infer;
pub mod lambda;
pub mod maintenance;
pub mod model;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod restore;
pub mod route;
pub mod schema;
pub mod settings;
pub mod sink;
pub mod verify;
