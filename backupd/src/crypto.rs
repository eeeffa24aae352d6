//! Client-side encryption: AES-256-GCM in the STREAM construction (64 KiB segments, each
//! authenticated, the last one marked), so objects are encrypted and decrypted as streams
//! and truncation or reordering is caught. An object starts with a magic and a random nonce
//! prefix.

use std::io::{self, Read, Write};
use std::path::Path;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, OsRng};
use aes_gcm::Aes256Gcm;

use crate::Error;

/// Plaintext bytes per segment.
const SEGMENT: usize = 64 * 1024;
/// Authentication tag per segment.
const TAG: usize = 16;
/// Marks an encrypted object (and the format version).
const MAGIC: &[u8; 8] = b"CAIRNAE1";
/// STREAM-BE32 nonce prefix length (the GCM nonce minus the counter and last-block flag).
const NONCE: usize = 7;
/// Bytes before the first segment.
pub(crate) const HEADER: usize = MAGIC.len() + NONCE;

/// A 256-bit key, read from `[backup] encryption_key_file`.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Reads 64 hex digits (surrounding whitespace allowed).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        Self::from_hex(text.trim()).ok_or_else(|| Error::KeyFile {
            path: path.to_path_buf(),
        })
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

/// Encrypts everything written to it into `inner`; [`EncryptWriter::finish`] writes the
/// last segment.
pub(crate) struct EncryptWriter<W: Write> {
    inner: W,
    encryptor: Option<EncryptorBE32<Aes256Gcm>>,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    /// Writes the header to `inner`.
    pub(crate) fn new(key: &Key, mut inner: W) -> io::Result<Self> {
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        inner.write_all(MAGIC)?;
        inner.write_all(&nonce)?;
        Ok(Self {
            inner,
            encryptor: Some(EncryptorBE32::from_aead(key.cipher(), (&nonce).into())),
            buf: Vec::with_capacity(SEGMENT),
        })
    }

    /// Writes the last segment and returns `inner`.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let encryptor = self
            .encryptor
            .take()
            .ok_or_else(|| io::Error::other("finished twice"))?;
        let last = encryptor
            .encrypt_last(self.buf.as_slice())
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.inner.write_all(&last)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == SEGMENT && !data.is_empty() {
            let encryptor = self
                .encryptor
                .as_mut()
                .ok_or_else(|| io::Error::other("finished"))?;
            let sealed = encryptor
                .encrypt_next(self.buf.as_slice())
                .map_err(|_| io::Error::other("encryption failed"))?;
            self.inner.write_all(&sealed)?;
            self.buf.clear();
        }
        let n = data.len().min(SEGMENT - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts an object of known length (`len`, header included) read from `inner`.
pub(crate) struct DecryptReader<R: Read> {
    inner: R,
    remaining: u64,
    decryptor: Option<DecryptorBE32<Aes256Gcm>>,
    out: Vec<u8>,
    pos: usize,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl<R: Read> DecryptReader<R> {
    /// Reads and checks the header.
    pub(crate) fn new(key: &Key, mut inner: R, len: u64) -> io::Result<Self> {
        let mut header = [0u8; HEADER];
        inner.read_exact(&mut header)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(invalid("not an encrypted cairn backup"));
        }
        let nonce: [u8; NONCE] = header[MAGIC.len()..]
            .try_into()
            .map_err(|_| invalid("short header"))?;
        Ok(Self {
            inner,
            remaining: len.saturating_sub(HEADER as u64),
            decryptor: Some(DecryptorBE32::from_aead(key.cipher(), (&nonce).into())),
            out: Vec::new(),
            pos: 0,
        })
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.decryptor.is_none() {
                return Ok(0);
            }
            let n = usize::try_from(self.remaining.min((SEGMENT + TAG) as u64))
                .map_err(|_| invalid("segment"))?;
            let mut sealed = vec![0u8; n];
            self.inner.read_exact(&mut sealed)?;
            self.remaining -= n as u64;
            self.out = if self.remaining == 0 {
                let d = self.decryptor.take().ok_or_else(|| invalid("finished"))?;
                d.decrypt_last(sealed.as_slice())
            } else {
                let d = self.decryptor.as_mut().ok_or_else(|| invalid("finished"))?;
                d.decrypt_next(sealed.as_slice())
            }
            .map_err(|_| invalid("decryption failed: wrong key or tampered data"))?;
            self.pos = 0;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key([b; 32])
    }

    fn round_trip(len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut w = EncryptWriter::new(&key(7), Vec::new()).expect("header");
        w.write_all(&data).expect("write");
        let sealed = w.finish().expect("finish");
        let mut r =
            DecryptReader::new(&key(7), sealed.as_slice(), sealed.len() as u64).expect("header");
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("decrypt");
        assert_eq!(out, data, "length {len}");
        let mut wrong =
            DecryptReader::new(&key(8), sealed.as_slice(), sealed.len() as u64).expect("header");
        assert!(wrong.read_to_end(&mut Vec::new()).is_err() || len == usize::MAX);
    }

    #[test]
    fn segments_round_trip_and_a_wrong_key_fails() {
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT] {
            round_trip(len);
        }
    }

    #[test]
    fn truncation_is_caught() {
        let mut w = EncryptWriter::new(&key(1), Vec::new()).expect("header");
        w.write_all(&vec![9u8; 3 * SEGMENT]).expect("write");
        let sealed = w.finish().expect("finish");
        let cut = &sealed[..HEADER + 2 * (SEGMENT + TAG)];
        let mut r = DecryptReader::new(&key(1), cut, cut.len() as u64).expect("header");
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(Key::from_hex(&"ab".repeat(32)).is_some());
        assert!(Key::from_hex(&"ab".repeat(31)).is_none());
        assert!(Key::from_hex(&"zz".repeat(32)).is_none());
    }
}
