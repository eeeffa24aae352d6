//! Watches: every watcher pulls the events it has not seen yet, from the in-memory ring when it
//! keeps up and from the store's history when it does not, so no event is lost or repeated,
//! events arrive in revision order, and a slow watcher never holds up writers or other streams.

pub mod log;
pub mod watcher;

pub use watcher::{Filters, WatchSpec};
