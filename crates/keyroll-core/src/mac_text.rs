//! The text of an HMAC-SHA256 tag in a token: 43 characters of unpadded
//! base64url, decoded by a fixed-length decoder.
//!
//! A verify decodes the token's MAC text while the HMAC runs (the decode does
//! not depend on the HMAC's result, so the CPU overlaps the two). The general
//! base64 decoder pays for lengths, padding modes and chunking it does not
//! need here; this one is ten 4-character groups and one 3-character tail,
//! unrolled, with one table lookup per character (the value already shifted
//! to its place in the group, so a group is four lookups ORed) and no branch
//! on the data until the end. Decoding sits on a verify's hot path, so its
//! instruction count matters: fewer instructions, fewer cycles before the
//! HMAC's can issue.

/// Length of the unpadded base64url text of a 32-byte MAC.
pub const MAC_TEXT_LEN: usize = 43;

/// Set in a table entry for a byte outside the alphabet; valid entries stay
/// below 2^24.
const INVALID: u32 = 1 << 31;

/// For each of the 4 positions in a group, the base64url value of each byte
/// shifted to its place in the group's 24 bits, [`INVALID`] for bytes outside
/// the alphabet (`=` included: the text is unpadded). 4 KiB.
static SHIFTED: [[u32; 256]; 4] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut tables = [[INVALID; 256]; 4];
    let mut position = 0;
    while position < 4 {
        let mut i = 0;
        while i < alphabet.len() {
            tables[position][alphabet[i] as usize] = (i as u32) << (18 - 6 * position);
            i += 1;
        }
        position += 1;
    }
    tables
};

/// The token's MAC, decoded from its text: the 32 bytes as four big-endian
/// words, so that comparing it with a computed MAC never reads back memory
/// written byte by byte (a load that spans several smaller stores waits for
/// them to retire instead of being forwarded: about 20 cycles).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacText([u64; 4]);

impl MacText {
    /// The MAC whose canonical unpadded base64url text is `text`, or `None`
    /// for any other text: another length, a character outside the url-safe
    /// alphabet, padding, or non-zero trailing bits (so one MAC has exactly
    /// one text). Accepts exactly what `base64`'s `URL_SAFE_NO_PAD`
    /// `decode_slice` accepts as 32 bytes.
    ///
    /// ```
    /// use keyroll_core::MacText;
    ///
    /// let text = "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    /// let mac = MacText::decode(text.as_bytes()).unwrap();
    /// let mut expected = [0u8; 32];
    /// expected[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    /// assert!(mac.matches(&expected));
    /// assert_eq!(mac.to_bytes(), expected);
    /// assert!(MacText::decode(b"3q2-7w").is_none());
    /// ```
    #[inline]
    pub fn decode(text: &[u8]) -> Option<Self> {
        let text: &[u8; MAC_TEXT_LEN] = text.try_into().ok()?;
        let [t0, t1, t2, t3] = &SHIFTED;
        let at = |i: usize| usize::from(text[i]);
        // Group `g`: characters 4g..4g+4, 24 bits (bytes 3g..3g+3 of the MAC).
        let group = |g: usize| t0[at(4 * g)] | t1[at(4 * g + 1)] | t2[at(4 * g + 2)] | t3[at(4 * g + 3)];
        // Straight-line, word by word, so that few groups are live at once.
        let (g0, g1, g2) = (group(0), group(1), group(2));
        let (g3, g4, g5) = (group(3), group(4), group(5));
        let (g6, g7) = (group(6), group(7));
        let (g8, g9) = (group(8), group(9));
        // The last 3 characters carry 18 bits: 2 bytes and 2 bits that must be 0.
        let tail = t0[at(40)] | t1[at(41)] | t2[at(42)];
        // Any invalid character sets INVALID.
        let bad = g0 | g1 | g2 | g3 | g4 | g5 | g6 | g7 | g8 | g9 | tail;
        if bad & INVALID != 0 || tail & (3 << 6) != 0 {
            return None;
        }
        let [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9] =
            [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9].map(u64::from);
        let tail = u64::from(tail >> 8);
        // Bytes 0-2 are group 0, 3-5 group 1, ... 27-29 group 9, 30-31 the tail.
        Some(Self([
            g0 << 40 | g1 << 16 | g2 >> 8,
            (g2 & 0xff) << 56 | g3 << 32 | g4 << 8 | g5 >> 16,
            (g5 & 0xffff) << 48 | g6 << 24 | g7,
            g8 << 40 | g9 << 16 | tail,
        ]))
    }

    /// True when `mac` is this MAC. Constant time in both: the words' XORs
    /// are ORed together and only the result, hidden from the optimizer, is
    /// tested.
    #[inline]
    pub fn matches(&self, mac: &[u8; 32]) -> bool {
        let word = |i: usize| u64::from_be_bytes(mac[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let difference =
            (self.0[0] ^ word(0)) | (self.0[1] ^ word(1)) | (self.0[2] ^ word(2)) | (self.0[3] ^ word(3));
        std::hint::black_box(difference) == 0
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

impl std::fmt::Debug for MacText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacText(..)")
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use rand::{Rng, RngCore};

    use super::*;

    fn decode_mac_text(text: &[u8]) -> Option<[u8; 32]> {
        MacText::decode(text).map(|mac| mac.to_bytes())
    }

    fn reference(text: &[u8]) -> Option<[u8; 32]> {
        let mut out = [0u8; 33];
        (B64.decode_slice(text, &mut out) == Ok(32)).then(|| out[..32].try_into().unwrap())
    }

    #[test]
    fn decodes_every_mac_the_encoder_writes() {
        let mut rng = rand::rng();
        for _ in 0..10_000 {
            let mut mac = [0u8; 32];
            rng.fill_bytes(&mut mac);
            let text = B64.encode(mac);
            assert_eq!(decode_mac_text(text.as_bytes()), Some(mac), "{text}");
        }
        for mac in [[0u8; 32], [0xff; 32]] {
            assert_eq!(decode_mac_text(B64.encode(mac).as_bytes()), Some(mac));
        }
    }

    #[test]
    fn refuses_what_the_base64_crate_refuses() {
        let mut rng = rand::rng();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut mac = [0u8; 32];
        rng.fill_bytes(&mut mac);
        let good = B64.encode(mac).into_bytes();
        // Every byte value at every position.
        for position in 0..MAC_TEXT_LEN {
            for byte in 0..=255u8 {
                let mut text = good.clone();
                text[position] = byte;
                assert_eq!(decode_mac_text(&text), reference(&text), "{byte} at {position}");
            }
        }
        // Every last character: only those with zero trailing bits decode.
        for &last in alphabet {
            let mut text = good.clone();
            text[42] = last;
            assert_eq!(decode_mac_text(&text), reference(&text), "{}", last as char);
        }
        // Random texts of the alphabet (a quarter have canonical trailing bits).
        for _ in 0..10_000 {
            let text: Vec<u8> = (0..MAC_TEXT_LEN)
                .map(|_| alphabet[rng.random_range(0..64)])
                .collect();
            assert_eq!(decode_mac_text(&text), reference(&text));
        }
        // Other lengths, padding, the standard alphabet.
        let padded = [&good[..], b"="].concat();
        let standard = B64.encode(mac).replace('-', "+").replace('_', "/");
        for text in [&good[..42], &padded[..], b"", standard.as_bytes()] {
            assert_eq!(decode_mac_text(text), reference(text));
        }
        assert!(decode_mac_text(&padded).is_none());
    }

    #[test]
    fn matches_only_its_own_mac() {
        let mut rng = rand::rng();
        for _ in 0..1_000 {
            let mut mac = [0u8; 32];
            rng.fill_bytes(&mut mac);
            let text = MacText::decode(B64.encode(mac).as_bytes()).unwrap();
            assert!(text.matches(&mac));
            for byte in 0..32 {
                let mut other = mac;
                other[byte] ^= 1 << rng.random_range(0..8);
                assert!(!text.matches(&other));
            }
        }
    }
}
