//! Deterministic payloads from a seed, so big cases print (and shrink) as a length and a
//! seed.

pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `range` (inclusive), which must not be empty.
    pub fn within(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next() % u64::from(high - low + 1)) as u32
    }
}

pub fn binary_payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Valid UTF-8 of exactly `len` bytes, mixing 1- to 4-byte code points.
pub fn text_payload(len: usize, seed: u64) -> String {
    let mut rng = SplitMix(seed);
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let room = (len - text.len()).min(4) as u32;
        let code = match rng.within(1, room) {
            1 => rng.within(0, 0x7F),
            2 => rng.within(0x80, 0x7FF),
            3 => match rng.within(0x800, 0xFFFF - 0x800) {
                // Skip the surrogates D800..=DFFF.
                c if c >= 0xD800 => c + 0x800,
                c => c,
            },
            _ => rng.within(0x1_0000, 0x10_FFFF),
        };
        text.push(char::from_u32(code).expect("not a surrogate"));
    }
    text
}
