//! Which versions of the format this build writes and reads (a leaf: errors name them).

/// The format version this build writes (it reads it and every one back to [`OLDEST_VERSION`]):
/// 2 added LEASE records, 3 AUTH records.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build reads: version 1, before LEASE records.
pub const OLDEST_VERSION: u32 = 1;
