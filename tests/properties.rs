//! The fuzz entry points of the sans-I/O core: `fuzz_protocol` and `fuzz_http` loop the
//! checks of `protocol_properties` and `http_properties` over random, structured and
//! mutated inputs for `FUZZ_SECONDS` (default 60, both at once on two threads) and print
//! the seed that replays a run with `FUZZ_SEED`. They are `#[ignore]`d, so a plain
//! `cargo test` skips them; `--release` runs about 30 times as many cases as a debug build:
//!
//! ```text
//! FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_ --nocapture
//! ```

mod common;
mod props;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestRunner};

use props::any_bytes::{any_case, check_any_input, AnyCase};
use props::http::{check_good_head, check_head, good_head, head_case, GoodHead, HeadCase};
use props::limits::{check_claim, check_limit, claim_case, limit_case, ClaimCase, LimitCase};
use props::stream::{chunks, Chunks};
use props::utf8::{bad_text_case, check_bad_text, BadTextCase};
use props::valid::{check_valid_stream, valid_case, ValidCase};

#[derive(Clone, Debug)]
enum ProtocolFuzzCase {
    Any(AnyCase),
    Valid(ValidCase),
    Limit(LimitCase),
    Claim(ClaimCase),
    BadText(BadTextCase),
}

fn protocol_fuzz_case() -> impl Strategy<Value = ProtocolFuzzCase> {
    prop_oneof![
        8 => any_case(4).prop_map(ProtocolFuzzCase::Any),
        2 => valid_case(8).prop_map(ProtocolFuzzCase::Valid),
        1 => limit_case().prop_map(ProtocolFuzzCase::Limit),
        1 => claim_case().prop_map(ProtocolFuzzCase::Claim),
        1 => bad_text_case().prop_map(ProtocolFuzzCase::BadText),
    ]
}

fn check_protocol_fuzz_case(case: ProtocolFuzzCase) -> TestCaseResult {
    match case {
        ProtocolFuzzCase::Any(case) => check_any_input(&case),
        ProtocolFuzzCase::Valid(case) => check_valid_stream(&case),
        ProtocolFuzzCase::Limit(case) => check_limit(&case),
        ProtocolFuzzCase::Claim(case) => check_claim(&case),
        ProtocolFuzzCase::BadText(case) => check_bad_text(&case),
    }
}

#[derive(Clone, Debug)]
enum HttpFuzzCase {
    Head(HeadCase),
    Good(GoodHead, Chunks),
}

fn http_fuzz_case() -> impl Strategy<Value = HttpFuzzCase> {
    prop_oneof![
        4 => head_case(8).prop_map(HttpFuzzCase::Head),
        1 => (good_head(), chunks()).prop_map(|(head, chunks)| HttpFuzzCase::Good(head, chunks)),
    ]
}

fn check_http_fuzz_case(case: HttpFuzzCase) -> TestCaseResult {
    match case {
        HttpFuzzCase::Head(case) => check_head(&case),
        HttpFuzzCase::Good(head, chunks) => check_good_head(&head, &chunks),
    }
}

/// Runs `check` on cases from `strategy` in batches until `FUZZ_SECONDS` (default 60) are
/// up. Batch `k` uses seed `FUZZ_SEED + k` (a random base by default), so the failing batch
/// replays with `FUZZ_SEED=<its seed>`. A failure is shrunk (for at most a minute) to a
/// minimal case and panics.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> TestCaseResult) {
    let seconds = env_u64("FUZZ_SECONDS").unwrap_or(60);
    let base = env_u64("FUZZ_SEED").unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() ^ (u64::from(now.subsec_nanos()) << 32)
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let batch = 64;
    let mut cases = 0u64;
    eprintln!("{name}: {seconds} s from FUZZ_SEED={base}");
    for k in 0u64.. {
        if k > 0 && Instant::now() >= deadline {
            break;
        }
        let seed = base.wrapping_add(k);
        let mut runner = TestRunner::new(Config {
            cases: batch,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            // Keep the run bounded even when a failure takes long to shrink.
            max_shrink_time: 60_000,
            ..Config::default()
        });
        if let Err(err) = runner.run(&strategy, &check) {
            panic!("{name}: failed after {cases} cases; replay with FUZZ_SEED={seed}\n{err}");
        }
        cases += u64::from(batch);
    }
    eprintln!(
        "{name}: {cases} cases in {:.1} s, no failure",
        started.elapsed().as_secs_f64()
    );
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

#[test]
#[ignore = "fuzz loop: FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_"]
fn fuzz_protocol() {
    fuzz(
        "fuzz_protocol",
        protocol_fuzz_case(),
        check_protocol_fuzz_case,
    );
}

#[test]
#[ignore = "fuzz loop: FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_"]
fn fuzz_http() {
    fuzz("fuzz_http", http_fuzz_case(), check_http_fuzz_case);
}
