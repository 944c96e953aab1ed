//! A key's version id as verifications report it.

use std::fmt;
use std::ops::Deref;

/// Ids up to this many bytes are stored inline (version numbers, fingerprints,
/// UUIDs); longer ones on the heap.
const INLINE: usize = 39;

/// The store's version id of a key, as a [`VerifiedBy`](crate::VerifiedBy)
/// reports it.
///
/// Copied rather than reference-counted: a shared `Arc` would make every
/// verification on every core write the same reference count.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VersionId(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline(Inline),
    Boxed(Box<str>),
}

/// An inline id, its length first, 8-aligned: a copy (one per verification)
/// is five aligned words. With the length and bytes unaligned after the
/// enum's tag, the compiler copied the odd head with overlapping moves
/// through the stack, and the read spanning two of them could not be
/// forwarded from the stores (a stall of about 20 cycles per verify).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, align(8))]
struct Inline {
    len: u8,
    bytes: [u8; INLINE],
}

impl VersionId {
    /// The id `id`.
    pub fn new(id: &str) -> Self {
        let bytes = id.as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut inline = [0u8; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Self(Repr::Inline(Inline { len, bytes: inline }))
            }
            _ => Self(Repr::Boxed(id.into())),
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(Inline { len, bytes }) => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).expect("copied from a str")
            }
            Repr::Boxed(id) => id,
        }
    }
}

impl Deref for VersionId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for VersionId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for VersionId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl PartialEq<str> for VersionId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for VersionId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_ids_read_back_and_compare() {
        let long = "projects/p/secrets/s/versions/12345678901234567890";
        for id in [
            "",
            "1",
            "k-0123456789ab",
            "3f2b8a1c-0d4e-4f6a-9b7c-8e5d2a1f0c3b",
            long,
        ] {
            let v = VersionId::new(id);
            assert_eq!(&*v, id);
            assert_eq!(v, id);
            assert_eq!(v.to_string(), id);
            assert_eq!(format!("{v:?}"), format!("{id:?}"));
            assert_eq!(v.clone(), VersionId::from(id));
        }
        assert!(matches!(VersionId::new(long).0, Repr::Boxed(_)));
        assert!(matches!(
            VersionId::new("3f2b8a1c-0d4e-4f6a-9b7c-8e5d2a1f0c3b").0,
            Repr::Inline(..)
        ));
        assert_eq!(std::mem::size_of::<VersionId>(), 48);
        assert_ne!(VersionId::new("1"), VersionId::new("10"));
    }
}
