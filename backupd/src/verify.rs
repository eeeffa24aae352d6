//! Verification: download a backup, check the stored object's hash against the manifest,
//! decode it and check the plain data's hash (and a snapshot's own trailer), and for a
//! cairn-server snapshot open it with `cairn-server snapshot status`. Restore verifies first
//! and refuses a backup that fails.

use std::io::Read;
use std::path::{Path, PathBuf};

use cairn_inventory::ServerKind;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::manifest::{Kind, Manifest};
use crate::trailer::{hex, Trailer};
use crate::{Backups, Codec, Error};

/// A verified backup, decoded into a local file that lives as long as this value.
#[derive(Debug)]
pub struct Verified {
    /// The manifest.
    pub manifest: Manifest,
    /// The decoded data (the snapshot database or the events).
    pub path: PathBuf,
    /// `cairn-server snapshot status -w json`'s output, for cairn snapshots.
    pub status: Option<String>,
    _dir: tempfile::TempDir,
}

impl Backups {
    /// Downloads and checks backup `id`.
    pub async fn verify(&self, id: &str) -> Result<Verified, Error> {
        let manifest = self.manifest(id).await?;
        self.verify_manifest(manifest).await
    }

    pub(crate) async fn verify_manifest(&self, manifest: Manifest) -> Result<Verified, Error> {
        if manifest.encrypted && self.codec.key.is_none() {
            return Err(Error::KeyNeeded(manifest.id));
        }
        let dir = tempfile::tempdir()?;
        let stored = dir.path().join("stored");
        let (sha, len) = self
            .download(&manifest.object, &stored, manifest.stored_bytes)
            .await?;
        let corrupt = |object: &str, expected: &str, actual: String| Error::Corrupt {
            id: manifest.id.clone(),
            object: object.to_string(),
            expected: expected.to_string(),
            actual,
        };
        if sha != manifest.stored_sha256 || len != manifest.stored_bytes {
            return Err(corrupt(&manifest.object, &manifest.stored_sha256, sha));
        }
        let plain = dir.path().join("plain");
        let codec = Codec {
            compression: manifest.compression,
            key: self.codec.key.clone(),
        };
        let is_full = manifest.kind == Kind::Full;
        let (trailer_ok, plain_sha, plain_len) = {
            let (stored, plain, encrypted) = (stored.clone(), plain.clone(), manifest.encrypted);
            tokio::task::spawn_blocking(move || decode_file(&codec, encrypted, &stored, &plain))
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData if manifest.encrypted => Error::Decrypt {
                        id: manifest.id.clone(),
                    },
                    _ => Error::Io(e),
                })?
        };
        if plain_sha != manifest.plain_sha256
            || plain_len != manifest.plain_bytes
            || (is_full && !trailer_ok)
        {
            return Err(corrupt(&manifest.object, &manifest.plain_sha256, plain_sha));
        }
        let status = if is_full && manifest.server == ServerKind::Cairn {
            Some(snapshot_status(&self.cluster.binary, &plain).await?)
        } else {
            None
        };
        Ok(Verified {
            manifest,
            path: plain,
            status,
            _dir: dir,
        })
    }

    /// Streams an object of `size` bytes (the manifest's; for the progress bar) into `path`;
    /// its SHA-256 and length.
    async fn download(&self, key: &str, path: &Path, size: u64) -> Result<(String, u64), Error> {
        let mut reader = self.store.open(key).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::file(path, e))?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        let bar = self.progress.as_ref();
        bar.begin(Some(size));
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
            bar.advance(n as u64);
            file.write_all(&buf[..n])
                .await
                .map_err(|e| Error::file(path, e))?;
        }
        bar.end();
        file.flush().await.map_err(|e| Error::file(path, e))?;
        Ok((hex(&hasher.finalize()), len))
    }
}

/// Decodes `stored` into `plain`; whether a trailer checks out, and the plain hash and size.
fn decode_file(
    codec: &Codec,
    encrypted: bool,
    stored: &Path,
    plain: &Path,
) -> std::io::Result<(bool, String, u64)> {
    let len = std::fs::metadata(stored)?.len();
    let input = std::io::BufReader::new(std::fs::File::open(stored)?);
    let mut reader = crate::codec::decoder(codec, encrypted, input, len)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(plain)?);
    let mut trailer = Trailer::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        trailer.update(&buf[..n]);
        std::io::Write::write_all(&mut out, &buf[..n])?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(trailer.finish())
}

/// `cairn-server snapshot status FILE -w json`.
async fn snapshot_status(binary: &Path, file: &Path) -> Result<String, Error> {
    let out = tokio::process::Command::new(binary)
        .args(["snapshot", "status"])
        .arg(file)
        .args(["-w", "json"])
        .output()
        .await
        .map_err(|e| Error::file(binary, e))?;
    if !out.status.success() {
        return Err(Error::Command {
            program: format!("{} snapshot status", binary.display()),
            status: out.status,
            stderr: last_line(&out.stderr),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The last non-empty line of a program's output.
pub(crate) fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}
