//! `cairn-server snapshot status|restore`: etcdutl's offline snapshot commands for cairn
//! snapshots, with etcdctl 3.4's flags and output formats.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use super::snapshot::{self, RestoreOptions, Status};
use crate::config::InitialCluster;

/// How `snapshot status` prints (etcdctl's `-w`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WriteOut {
    /// `hash, revision, total keys, total size` on one line.
    Simple,
    /// A bordered table.
    Table,
    /// etcdctl's JSON object.
    Json,
}

/// `cairn-server snapshot ...`.
#[derive(Debug, Parser)]
#[command(
    name = "cairn-server snapshot",
    about = "Inspect and restore cairn-server snapshots"
)]
pub struct SnapshotCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verifies a snapshot file and prints its hash, revision, total keys and size.
    Status {
        /// The snapshot file (from `etcdctl snapshot save` against cairn-server).
        file: PathBuf,
        /// Output format.
        #[arg(short = 'w', long = "write-out", value_enum, default_value = "simple")]
        write_out: WriteOut,
    },
    /// Creates a new data dir holding the snapshot's keyspace, for a new cluster.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The data dir to create [default: ${name}.etcd].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The new member's name.
        #[arg(long, default_value = "default")]
        name: String,
        /// The new cluster: name=peer-url,...
        #[arg(long, default_value = "default=http://localhost:2380")]
        initial_cluster: InitialCluster,
        /// The new cluster's token.
        #[arg(long, default_value = "etcd-cluster")]
        initial_cluster_token: String,
        /// This member's peer URLs.
        #[arg(long, default_value = "http://localhost:2380", value_delimiter = ',')]
        initial_advertise_peer_urls: Vec<String>,
        /// Restore even if the SHA-256 trailer does not match.
        #[arg(long)]
        skip_hash_check: bool,
    },
}

/// go-humanize's `Bytes`, as etcdctl prints sizes ("25 kB", "2.1 MB").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = (n as f64).log(1000.0).floor();
    let val = ((n as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS[e as usize];
    if val < 10.0 {
        format!("{val:.1} {unit}")
    } else {
        format!("{val:.0} {unit}")
    }
}

/// Renders `s` as etcdctl 3.4 renders `snapshot status`.
pub fn render_status(s: &Status, w: WriteOut) -> String {
    let hash = format!("{:x}", s.hash);
    let size = human_bytes(s.total_size);
    match w {
        WriteOut::Simple => format!("{hash}, {}, {}, {size}\n", s.revision, s.total_key),
        WriteOut::Json => format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
            s.hash, s.revision, s.total_key, s.total_size
        ),
        WriteOut::Table => {
            let header = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
            let cells = [hash, s.revision.to_string(), s.total_key.to_string(), size];
            let widths: Vec<usize> = header
                .iter()
                .zip(&cells)
                .map(|(h, c)| h.len().max(c.len()))
                .collect();
            let line = widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("+");
            let line = format!("+{line}+\n");
            let center = |t: &str, w: usize| {
                let left = (w - t.len()) / 2;
                format!("{}{t}{}", " ".repeat(left), " ".repeat(w - t.len() - left))
            };
            let head: Vec<String> = header
                .iter()
                .zip(&widths)
                .map(|(h, &w)| format!(" {} ", center(h, w)))
                .collect();
            let row: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, &w))| {
                    // Numbers right-aligned, text left-aligned, as etcdctl's table writer does.
                    if i == 1 || i == 2 {
                        format!(" {c:>w$} ")
                    } else {
                        format!(" {c:<w$} ")
                    }
                })
                .collect();
            format!(
                "{line}|{}|\n{line}|{}|\n{line}",
                head.join("|"),
                row.join("|")
            )
        }
    }
}

/// Runs `cairn-server snapshot <args>` (`args` starts with the program name and "snapshot");
/// errors are one line on stderr, exit code 1 (2 for bad flags).
pub fn snapshot_main(args: Vec<String>) -> ExitCode {
    let cli = match SnapshotCli::try_parse_from(
        std::iter::once("cairn-server snapshot".to_string()).chain(args.into_iter().skip(2)),
    ) {
        Ok(c) => c,
        Err(e) => return crate::config::exit_for_args_error(&e, "cairn-server snapshot"),
    };
    match cli.command {
        Command::Status { file, write_out } => match snapshot::status(&file) {
            Ok(s) => {
                print!("{}", render_status(&s, write_out));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cairn-server snapshot status: {}", crate::error::chain(&e));
                ExitCode::FAILURE
            }
        },
        Command::Restore {
            file,
            data_dir,
            name,
            initial_cluster,
            initial_cluster_token,
            initial_advertise_peer_urls,
            skip_hash_check,
        } => {
            let opts = RestoreOptions {
                data_dir: data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.etcd"))),
                name,
                initial_cluster,
                initial_cluster_token,
                initial_advertise_peer_urls,
                skip_hash_check,
            };
            match snapshot::restore(&file, &opts) {
                Ok(meta) => {
                    println!(
                        "restored snapshot {} at revision {} into {}",
                        file.display(),
                        meta.revision,
                        opts.data_dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cairn-server snapshot restore: {}", crate::error::chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_go_humanize() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(20480), "20 kB");
        assert_eq!(human_bytes(2_105_344), "2.1 MB");
        assert_eq!(human_bytes(999), "999 B");
    }

    #[test]
    fn table_has_etcdctls_columns() {
        let s = Status {
            hash: 0xfe01cf57,
            revision: 10,
            total_key: 7,
            total_size: 2_105_344,
        };
        let t = render_status(&s, WriteOut::Table);
        assert_eq!(
            t,
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | fe01cf57 |       10 |          7 | 2.1 MB     |\n\
             +----------+----------+------------+------------+\n"
        );
    }
}
