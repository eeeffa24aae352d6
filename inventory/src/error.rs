//! The crate's one error type. Every variant that comes from the file's content carries the
//! [`Location`] to change and says how to change it.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::io;
use std::path::PathBuf;

use crate::Location;

/// Why an inventory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{}: cannot read the inventory (give another file with -i FILE)", path.display())]
    Read {
        /// The inventory file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Not TOML, or TOML that does not fit the inventory's tables (unknown key, wrong type,
    /// missing required key).
    #[error("{at}: {message}; fix it there (examples/full.toml shows every option and its type)")]
    Syntax {
        /// Where.
        at: Location,
        /// The parser's message, without its source excerpt.
        message: String,
        /// The parser's error, with its source excerpt. Not the `source()`: its text repeats
        /// the position and message over several lines, and errors here are one line.
        /// Boxed: it is large, and errors travel by value.
        parse: Box<toml::de::Error>,
    },
    /// No `[[hosts]]` at all.
    #[error(
        "{at}: the inventory has no hosts; add one [[hosts]] table (name, address) per member"
    )]
    NoHosts {
        /// Where `hosts` is (or the file's start).
        at: Location,
    },
    /// Two hosts with one name.
    #[error("{at}: host name \"{name}\" is already used at line {first_line}; give every member its own name")]
    DuplicateHostName {
        /// The second use.
        at: Location,
        /// The name.
        name: String,
        /// Line of the first use.
        first_line: usize,
    },
    /// Two hosts with one address.
    #[error("{at}: address \"{address}\" is already used at line {first_line}; each member needs its own host")]
    DuplicateAddress {
        /// The second use.
        at: Location,
        /// The address.
        address: String,
        /// Line of the first use.
        first_line: usize,
    },
    /// Two local members listening on one address and port.
    #[error("{at}: {address}:{port} is already {other}'s; members on one machine need ports of their own")]
    PortTaken {
        /// The second use.
        at: Location,
        /// The address.
        address: String,
        /// The port.
        port: u16,
        /// The member that has it first.
        other: String,
    },
    /// A local member on an address that is not this machine's loopback.
    #[error("{at}: \"{address}\" is not a loopback address; with transport = \"local\" every member runs on this machine: use 127.0.0.1 (or another 127.x.y.z)")]
    NotLoopback {
        /// Where.
        at: Location,
        /// The address as written.
        address: String,
    },
    /// An address that is neither an IP address nor a DNS name.
    #[error("{at}: \"{address}\" is neither an IP address nor a DNS name; write e.g. 10.0.0.1 or etcd1.example.com")]
    InvalidAddress {
        /// Where.
        at: Location,
        /// The address as written.
        address: String,
    },
    /// Two of the member ports are the same number.
    #[error("{at}: {key} {port} is also the {other}; give each port its own number")]
    PortClash {
        /// The second port.
        at: Location,
        /// Its key.
        key: &'static str,
        /// The port.
        port: u16,
        /// The key it clashes with.
        other: &'static str,
    },
    /// A local file the tools need is missing or unreadable.
    #[error("{at}: {key} {}: cannot read it; fix the path (relative paths are against the inventory's directory, ~ is the home directory)", path.display())]
    MissingFile {
        /// Where the path is set (or the file's start for a default).
        at: Location,
        /// Its key.
        key: &'static str,
        /// The path as resolved.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: io::Error,
    },
    /// A password variable the inventory names is not set.
    #[error("{at}: the environment variable {var} is not set; export it, or give a password file instead")]
    MissingVariable {
        /// Where the variable is named.
        at: Location,
        /// The variable.
        var: String,
    },
    /// A duration that does not parse.
    #[error("{at}: {key} = \"{value}\" is not a duration; write e.g. \"30m\" or \"2h\"")]
    InvalidDuration {
        /// Where.
        at: Location,
        /// Its key.
        key: &'static str,
        /// The text.
        value: String,
        /// The parser's reason (boxed to keep the error small).
        #[source]
        source: Box<humantime::DurationError>,
    },
    /// A value outside what its key allows.
    #[error("{at}: {key} = {value} is not allowed: it must be {expected}")]
    InvalidValue {
        /// Where.
        at: Location,
        /// Its key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
}
