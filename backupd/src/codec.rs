//! What happens to bytes between the server and the store: zstd compression, then optional
//! encryption, then cutting into upload parts while hashing what is stored. Decoding runs the
//! other way from a downloaded file. Both stream: memory stays at a part plus codec buffers.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_inventory::Compression;
use sha2::{Digest, Sha256};

use crate::crypto::{DecryptReader, EncryptWriter, Key};
use crate::trailer::hex;

/// zstd level: fast, and several times smaller than the raw database.
const ZSTD_LEVEL: i32 = 3;

/// How objects are encoded.
#[derive(Clone, Debug)]
pub struct Codec {
    /// Compression.
    pub compression: Compression,
    /// Encryption key, when encrypting.
    pub key: Option<Key>,
}

#[derive(Debug)]
struct Parts {
    buf: Vec<u8>,
    ready: VecDeque<Bytes>,
    hasher: Sha256,
    stored: u64,
    part_size: usize,
}

/// The end of the chain: collects stored bytes into parts and hashes them.
#[derive(Clone, Debug)]
struct PartSink(Arc<Mutex<Parts>>);

impl PartSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut p = self.lock();
        p.hasher.update(data);
        p.stored += data.len() as u64;
        p.buf.extend_from_slice(data);
        let part_size = p.part_size;
        while p.buf.len() >= part_size {
            let rest = p.buf.split_off(part_size);
            let part = std::mem::replace(&mut p.buf, rest);
            p.ready.push_back(part.into());
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Sealing {
    Plain(PartSink),
    Encrypted(Box<EncryptWriter<PartSink>>),
}

impl Write for Sealing {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(data),
            Self::Encrypted(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Encrypted(w) => w.flush(),
        }
    }
}

impl Sealing {
    fn finish(self) -> io::Result<()> {
        match self {
            Self::Plain(_) => Ok(()),
            Self::Encrypted(w) => (*w).finish().map(drop),
        }
    }
}

enum Layer {
    Plain(Sealing),
    Zstd(zstd::stream::write::Encoder<'static, Sealing>),
}

/// Encodes a stream into upload parts: write the plain bytes with [`Encoder::write`], send
/// [`Encoder::ready_parts`] as they come, and the rest after [`Encoder::finish`].
pub(crate) struct Encoder {
    layer: Layer,
    sink: PartSink,
}

/// What [`Encoder::finish`] leaves: the last part and the stored object's hash and size.
pub(crate) struct Encoded {
    /// Remaining parts, the last possibly short (or empty).
    pub(crate) parts: Vec<Bytes>,
    /// SHA-256 of the stored bytes (hex).
    pub(crate) sha256: String,
    /// Stored size.
    pub(crate) size: u64,
}

impl Encoder {
    /// An encoder cutting parts of `part_size` bytes.
    pub(crate) fn new(codec: &Codec, part_size: usize) -> io::Result<Self> {
        let sink = PartSink(Arc::new(Mutex::new(Parts {
            buf: Vec::with_capacity(part_size),
            ready: VecDeque::new(),
            hasher: Sha256::new(),
            stored: 0,
            part_size,
        })));
        let sealing = match &codec.key {
            Some(key) => Sealing::Encrypted(Box::new(EncryptWriter::new(key, sink.clone())?)),
            None => Sealing::Plain(sink.clone()),
        };
        let layer = match codec.compression {
            Compression::Zstd => {
                Layer::Zstd(zstd::stream::write::Encoder::new(sealing, ZSTD_LEVEL)?)
            }
            Compression::None => Layer::Plain(sealing),
        };
        Ok(Self { layer, sink })
    }

    /// Feeds plain bytes.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.layer {
            Layer::Plain(w) => w.write_all(data),
            Layer::Zstd(w) => w.write_all(data),
        }
    }

    /// Full parts ready to upload.
    pub(crate) fn ready_parts(&mut self) -> Vec<Bytes> {
        self.sink.lock().ready.drain(..).collect()
    }

    /// Flushes every layer.
    pub(crate) fn finish(self) -> io::Result<Encoded> {
        match self.layer {
            Layer::Plain(s) => s.finish()?,
            Layer::Zstd(z) => z.finish()?.finish()?,
        }
        let mut p = self.sink.lock();
        let mut parts: Vec<Bytes> = p.ready.drain(..).collect();
        let last = std::mem::take(&mut p.buf);
        if !last.is_empty() || parts.is_empty() {
            parts.push(last.into());
        }
        let sha256 = hex(&std::mem::take(&mut p.hasher).finalize());
        Ok(Encoded {
            parts,
            sha256,
            size: p.stored,
        })
    }
}

/// Plain bytes of a stored object of length `len` read from `stored`.
pub(crate) fn decoder<'a, R: Read + 'a>(
    codec: &Codec,
    encrypted: bool,
    stored: R,
    len: u64,
) -> io::Result<Box<dyn Read + 'a>> {
    let opened: Box<dyn Read + 'a> = match (encrypted, &codec.key) {
        (true, Some(key)) => Box::new(DecryptReader::new(key, stored, len)?),
        (true, None) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no key")),
        (false, _) => Box::new(stored),
    };
    Ok(match codec.compression {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(opened)?),
        Compression::None => opened,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codecs() -> Vec<Codec> {
        let key = Key::from_hex(&"42".repeat(32));
        let mut v = Vec::new();
        for compression in [Compression::Zstd, Compression::None] {
            for key in [None, key.clone()] {
                v.push(Codec { compression, key });
            }
        }
        v
    }

    #[test]
    fn every_codec_round_trips_through_small_parts() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 7) as u8 ^ (i >> 9) as u8)
            .collect();
        for codec in codecs() {
            let mut e = Encoder::new(&codec, 4096).expect("encoder");
            let mut stored = Vec::new();
            for chunk in data.chunks(10_000) {
                e.write(chunk).expect("write");
                for p in e.ready_parts() {
                    assert_eq!(p.len(), 4096);
                    stored.extend_from_slice(&p);
                }
            }
            let done = e.finish().expect("finish");
            done.parts.iter().for_each(|p| stored.extend_from_slice(p));
            assert_eq!(done.size, stored.len() as u64);
            assert_eq!(done.sha256, hex(&Sha256::digest(&stored)));
            let mut out = Vec::new();
            decoder(
                &codec,
                codec.key.is_some(),
                stored.as_slice(),
                stored.len() as u64,
            )
            .expect("decoder")
            .read_to_end(&mut out)
            .expect("decode");
            assert_eq!(out, data, "{:?}", codec.compression);
        }
    }
}
