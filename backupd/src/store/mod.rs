//! Where backups live, behind one small trait: S3 (and S3-compatible stores), a local
//! directory, and memory for unit tests. Large objects go up in parts so that nothing holds a
//! whole snapshot in memory; small ones (manifests, the lock) in one request.

mod file;
mod memory;
mod object_store;
mod s3;

use std::path::Path;

pub use file::FileStore;
pub use memory::MemoryStore;
pub use object_store::{ObjectStore, Upload};
pub use s3::{S3Options, S3Store};

use crate::Error;

/// Where a `[backup] store` URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// `file:///path`.
    File {
        /// The directory.
        dir: std::path::PathBuf,
    },
}

impl StoreUrl {
    /// Parses `s3://bucket/prefix` or `file:///path`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        match url.split_once("://") {
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::StoreUrl(url.to_string()));
                }
                Ok(Self::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                })
            }
            Some(("file", path)) if !path.is_empty() => Ok(Self::File {
                dir: Path::new(path).to_path_buf(),
            }),
            _ => Err(Error::StoreUrl(url.to_string())),
        }
    }
}

/// Opens the store a URL names; S3 settings come from `s3` and the AWS environment.
pub async fn open(url: &str, s3: &S3Options) -> Result<(Box<dyn ObjectStore>, String), Error> {
    match StoreUrl::parse(url)? {
        StoreUrl::S3 { bucket, prefix } => {
            Ok((Box::new(S3Store::connect(bucket, s3).await), prefix))
        }
        StoreUrl::File { dir } => Ok((Box::new(FileStore::new(dir)), String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("s3://b/x/y/").expect("s3"),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "x/y".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://b").expect("s3"),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///var/b").expect("file"),
            StoreUrl::File {
                dir: "/var/b".into()
            }
        );
        for bad in ["s3:///x", "ftp://x", "/var/b", "file://"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
