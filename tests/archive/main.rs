//! End-to-end tests of the archive core, in process and through the CLI: event fixtures,
//! lossless round trips, event-time partitioning, determinism and thresholds.

mod cli;
mod fixtures;
mod golden;
mod partitioning;
mod roundtrip;
mod support;
mod thresholds;
