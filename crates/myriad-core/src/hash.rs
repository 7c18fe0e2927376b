//! A stable 64-bit hash of a simulation's state, for reproducibility
//! checks: the same state gives the same hash on any machine, thread count
//! and build (unlike `std`'s hasher, whose algorithm may change).

/// Accumulates bytes into a 64-bit digest (FNV-style over 8-byte words,
/// finished with a strong mix). Not cryptographic: it detects accidental
/// differences, not adversaries.
#[derive(Clone, Debug)]
pub struct StateHasher {
    state: u64,
    pending: [u8; 8],
    len: usize,
    total: u64,
}

const PRIME: u64 = 0x0000_0100_0000_01B3;

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher {
            state: 0xcbf2_9ce4_8422_2325,
            pending: [0; 8],
            len: 0,
            total: 0,
        }
    }
}

impl StateHasher {
    /// A fresh hasher.
    pub fn new() -> StateHasher {
        StateHasher::default()
    }

    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(PRIME).rotate_left(29);
    }

    /// Feed bytes.
    pub fn bytes(&mut self, mut b: &[u8]) {
        self.total += b.len() as u64;
        if self.len > 0 {
            let take = (8 - self.len).min(b.len());
            self.pending[self.len..self.len + take].copy_from_slice(&b[..take]);
            self.len += take;
            b = &b[take..];
            if self.len == 8 {
                let w = u64::from_le_bytes(self.pending);
                self.word(w);
                self.len = 0;
            }
        }
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.len = rest.len();
    }

    /// Feed a number.
    pub fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }

    /// Feed a float by its bits.
    pub fn f64(&mut self, x: f64) {
        self.u64(x.to_bits());
    }

    /// Feed a string (with its length, so that "ab","c" differs from "a","bc").
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    /// The digest.
    pub fn finish(&self) -> u64 {
        let mut h = self.state;
        let mut tail = [0u8; 8];
        tail[..self.len].copy_from_slice(&self.pending[..self.len]);
        h = (h ^ u64::from_le_bytes(tail) ^ self.total).wrapping_mul(PRIME);
        // SplitMix64 finaliser.
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^ (h >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_the_input_does_not_change_the_digest() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut a = StateHasher::new();
        a.bytes(&data);
        let mut b = StateHasher::new();
        b.bytes(&data[..3]);
        b.bytes(&data[3..50]);
        b.bytes(&data[50..]);
        assert_eq!(a.finish(), b.finish());
        let mut c = StateHasher::new();
        c.bytes(&data[..99]);
        assert_ne!(a.finish(), c.finish());
    }
}
