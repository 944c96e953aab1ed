//! HMAC-SHA256 with the inner and outer states precomputed per key (the
//! implementation note of RFC 2104 §4), and the message padded once for all
//! keys: a try-all verification then costs two SHA-256 blocks per key (for
//! messages up to 55 bytes) and nothing else.

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256, compress256};
use subtle::ConstantTimeEq;

type Block = GenericArray<u8, U64>;

const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The two SHA-256 states after absorbing `key ⊕ ipad` and `key ⊕ opad`.
#[derive(Clone)]
pub(crate) struct PrecomputedHmac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl PrecomputedHmac {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let state_after = |pad: u8| {
            let mut state = IV;
            let padded: Block = block.map(|b| b ^ pad).into();
            compress256(&mut state, &[padded]);
            state
        };
        Self {
            inner: state_after(0x36),
            outer: state_after(0x5c),
        }
    }

    /// The MAC of the message `padded` was made from.
    pub(crate) fn mac(&self, padded: &PaddedMessage) -> [u8; 32] {
        let mut state = self.inner;
        compress256(&mut state, padded.blocks());
        let mut block = Block::default();
        for (chunk, word) in block[..32].chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut state = self.outer;
        compress256(&mut state, &[block]);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// True when `signature` is the MAC, compared in constant time.
    pub(crate) fn verify(&self, padded: &PaddedMessage, signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 32]>::try_from(signature) else {
            return false;
        };
        // Branch-free XOR over 64-bit words, then one constant-time test.
        let mac = self.mac(padded);
        let difference = mac
            .chunks_exact(8)
            .zip(signature.chunks_exact(8))
            .fold(0u64, |acc, (a, b)| {
                acc | (u64::from_ne_bytes(a.try_into().expect("8 bytes"))
                    ^ u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            });
        bool::from(difference.ct_eq(&0))
    }
}

/// A message with SHA-256 padding, as it follows the 64-byte `key ⊕ ipad`
/// block. Messages up to 119 bytes stay on the stack.
pub(crate) struct PaddedMessage {
    stack: [Block; 2],
    heap: Vec<Block>,
    count: usize,
}

impl PaddedMessage {
    pub(crate) fn new(message: &[u8]) -> Self {
        let count = (message.len() + 9).div_ceil(64);
        let mut padded = Self {
            stack: Default::default(),
            heap: Vec::new(),
            count,
        };
        if count > padded.stack.len() {
            padded.heap = vec![Block::default(); count];
        }
        let blocks = padded.blocks_mut();
        for (block, chunk) in blocks.iter_mut().zip(message.chunks(64)) {
            block[..chunk.len()].copy_from_slice(chunk);
        }
        blocks[message.len() / 64][message.len() % 64] = 0x80;
        let bits = (64 + message.len() as u64) * 8;
        blocks[count - 1][56..].copy_from_slice(&bits.to_be_bytes());
        padded
    }

    fn blocks(&self) -> &[Block] {
        if self.heap.is_empty() {
            &self.stack[..self.count]
        } else {
            &self.heap
        }
    }

    fn blocks_mut(&mut self) -> &mut [Block] {
        if self.heap.is_empty() {
            &mut self.stack[..self.count]
        } else {
            &mut self.heap
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};

    use super::*;

    #[test]
    fn equals_the_hmac_crate_for_every_message_and_key_length() {
        for key_len in [0usize, 1, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let precomputed = PrecomputedHmac::new(&key);
            for message_len in 0..300usize {
                let message: Vec<u8> = (0..message_len).map(|i| (i * 13 + 1) as u8).collect();
                let expected = <Hmac<Sha256> as Mac>::new_from_slice(&key)
                    .unwrap()
                    .chain_update(&message)
                    .finalize()
                    .into_bytes();
                let padded = PaddedMessage::new(&message);
                assert_eq!(
                    precomputed.mac(&padded)[..],
                    expected[..],
                    "key {key_len}, message {message_len}"
                );
                assert!(precomputed.verify(&padded, &expected));
                let mut wrong = expected;
                wrong[31] ^= 1;
                assert!(!precomputed.verify(&padded, &wrong));
                assert!(!precomputed.verify(&padded, &expected[..31]));
            }
        }
    }
}
