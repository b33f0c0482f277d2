//! The property-test model of the sans-I/O core, shared by the `*_properties` test files
//! and the fuzz loops in `properties.rs`: generators of byte streams and request heads,
//! the drivers that feed them to the library, and the checks every delivery must pass.
//!
//! - `library`: every use of the `pure_ws` API, and nothing else.
//! - `stream`: feeding a byte stream in chunks (`feed`) and what any delivery must satisfy.
//! - `valid`, `any_bytes`, `limits`, `utf8`: the kinds of stream and their checks.
//! - `http`: request heads, the head reader and the request parser.
//! - `payloads`, `mutation`, `heap`: seeded payloads, byte mutations, heap accounting.
//!
//! Frames are built with the test-side encoder `common::wire`, never with the library's,
//! so an encoder bug cannot hide behind the same bug in the tests. A counting global
//! allocator measures the heap the protocol holds, so the memory limits are checked, not
//! inferred.

// Each test file uses only the part of this model its properties need.
#![allow(dead_code)]

pub mod any_bytes;
pub mod heap;
pub mod http;
pub mod library;
pub mod limits;
pub mod mutation;
pub mod payloads;
pub mod stream;
pub mod utf8;
pub mod valid;

use proptest::test_runner::Config;

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// `cases` test cases unless `PROPTEST_CASES` says otherwise; failures are not persisted.
pub fn config(cases: u32) -> Config {
    let mut config = Config::default(); // reads PROPTEST_CASES and the other PROPTEST_* vars
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}
