//! How cairn's tools reach a member. One place for what every tool needs to talk to a cluster
//! (the inspector, backups, the benchmark, the provisioner and the CLI), so that TLS, timeouts
//! and leader discovery behave the same everywhere:
//!
//! - [`identity`]: the client certificates the PKI issues and their file names;
//! - [`tls`]: rustls configurations from those files, and URL parsing;
//! - [`connect`]: etcd-client connections with timeouts, credentials and leader discovery;
//! - [`auth`]: a cluster's users, roles and auth switch, as etcd's Auth API gives them;
//! - [`http`]: `/metrics` and `/health` over reqwest, https with the client certificate;
//! - [`metrics`]: Prometheus text, parsed by a well-kept parser;
//! - [`served`]: the certificate chain a member's port presents;
//! - [`clock`]: where "now" comes from.
//!
//! Nothing here knows an inventory: callers say which endpoints and which files.

pub mod auth;
pub mod clock;
pub mod connect;
pub mod error;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod served;
pub mod tls;

pub use clock::{Clock, FakeClock, SystemClock};
pub use connect::{Connector, Credentials, MemberClients};
pub use error::{chain, Error};
pub use http::HttpClient;
pub use identity::{ClientIdentity, TlsFiles};
pub use metrics::Metrics;
pub use served::ServedChainReader;
