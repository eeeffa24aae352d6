//! Which versions of the format this build writes and reads (a leaf: errors name them).

/// The format version this build writes (it reads this one and [`OLDEST_VERSION`]).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads: version 1, before LEASE records.
pub const OLDEST_VERSION: u32 = 1;
