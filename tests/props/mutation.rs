//! Byte mutations of a valid input, for the protocol and the HTTP fuzzing alike.

use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Clone, Debug)]
pub enum Mutation {
    Flip(u8),
    Set(u8),
    Insert(u8),
    Delete,
    Truncate,
}

/// Applies each mutation at its position in turn.
pub fn mutate(mut bytes: Vec<u8>, mutations: &[(Index, Mutation)]) -> Vec<u8> {
    for (at, mutation) in mutations {
        let i = at.index(bytes.len() + 1);
        match *mutation {
            Mutation::Insert(byte) => bytes.insert(i, byte),
            _ if i == bytes.len() => {}
            Mutation::Flip(bit) => bytes[i] ^= 1 << (bit % 8),
            Mutation::Set(byte) => bytes[i] = byte,
            Mutation::Delete => {
                bytes.remove(i);
            }
            Mutation::Truncate => bytes.truncate(i),
        }
    }
    bytes
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (0u8..8).prop_map(Mutation::Flip),
        2 => any::<u8>().prop_map(Mutation::Set),
        2 => any::<u8>().prop_map(Mutation::Insert),
        2 => Just(Mutation::Delete),
        1 => Just(Mutation::Truncate),
    ]
}
