//! MVCC revisions and their on-disk key encoding.

/// A point in the store's history: `main` is the store revision a write created, `sub` orders
/// the changes inside one write (a txn touching several keys shares one main revision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store revision of the write.
    pub main: i64,
    /// The change's position inside that write.
    pub sub: i64,
}

/// Length of an encoded revision: two big-endian i64s, so byte order equals revision order.
pub const REVISION_LEN: usize = 16;

impl Revision {
    /// A revision at `main`/`sub`.
    pub const fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }

    /// Big-endian encoding, so that byte order of encoded revisions equals revision order.
    pub fn to_bytes(self) -> [u8; REVISION_LEN] {
        let mut b = [0u8; REVISION_LEN];
        b[..8].copy_from_slice(&self.main.to_be_bytes());
        b[8..].copy_from_slice(&self.sub.to_be_bytes());
        b
    }

    /// Decodes [`Revision::to_bytes`]; `None` when the slice has the wrong length.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != REVISION_LEN {
            return None;
        }
        let main = i64::from_be_bytes(b[..8].try_into().ok()?);
        let sub = i64::from_be_bytes(b[8..].try_into().ok()?);
        Some(Self { main, sub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_round_trips_and_keeps_order(a in 0i64..i64::MAX, b in 0i64..i64::MAX, c in 0i64..1000, d in 0i64..1000) {
            let x = Revision::new(a, c);
            let y = Revision::new(b, d);
            prop_assert_eq!(Revision::from_bytes(&x.to_bytes()), Some(x));
            prop_assert_eq!(x.cmp(&y), x.to_bytes().cmp(&y.to_bytes()));
        }
    }
}
