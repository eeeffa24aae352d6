//! The snapshot's own integrity check: etcd and cairn-server end the snapshot stream with the
//! SHA-256 of everything before it. Checked on the way to the store and again on restore.

use sha2::{Digest, Sha256};

/// Length of the trailer.
const LEN: usize = 32;

/// Hashes a stream and checks its trailer at the end; also the SHA-256 of the whole stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trailer {
    body: Sha256,
    whole: Sha256,
    tail: Vec<u8>,
    len: u64,
}

impl Trailer {
    /// Feeds the next bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.whole.update(data);
        self.len += data.len() as u64;
        self.tail.extend_from_slice(data);
        if self.tail.len() > LEN {
            let cut = self.tail.len() - LEN;
            self.body.update(&self.tail[..cut]);
            self.tail.drain(..cut);
        }
    }

    /// Whether the last 32 bytes are the SHA-256 of the rest; the whole stream's hash (hex)
    /// and length.
    pub(crate) fn finish(self) -> (bool, String, u64) {
        let ok = self.tail.len() == LEN && self.body.finalize().as_slice() == self.tail.as_slice();
        (ok, hex(&self.whole.finalize()), self.len)
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_trailer(body: &[u8]) -> Vec<u8> {
        let mut v = body.to_vec();
        v.extend_from_slice(&Sha256::digest(body));
        v
    }

    #[test]
    fn a_trailer_checks_out_however_the_stream_is_cut() {
        let stream = with_trailer(&[5u8; 1000]);
        for chunk in [1, 7, 31, 32, 33, 500, 2000] {
            let mut t = Trailer::default();
            stream.chunks(chunk).for_each(|c| t.update(c));
            let (ok, whole, len) = t.finish();
            assert!(ok, "chunk {chunk}");
            assert_eq!((whole, len), (hex(&Sha256::digest(&stream)), 1032));
        }
    }

    #[test]
    fn a_flipped_bit_or_a_short_stream_fails() {
        let mut stream = with_trailer(b"snapshot");
        stream[2] ^= 1;
        let mut t = Trailer::default();
        t.update(&stream);
        assert!(!t.finish().0);
        let mut t = Trailer::default();
        t.update(&[0u8; 10]);
        assert!(!t.finish().0);
    }
}
