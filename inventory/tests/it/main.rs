//! The inventories shipped under `examples/` parse and pass every check.

mod examples;
