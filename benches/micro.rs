//! Micro-benchmarks of the pure-ws library, each next to a baseline measured in the same run.
//!
//! ```text
//! cargo bench --bench micro              # a few seconds
//! cargo bench --bench micro -- --quick   # fewer repetitions (CI smoke)
//! ```
//!
//! Plain `std::time::Instant` and `std::hint::black_box`: every case runs several
//! repetitions and reports the best one, the figure least disturbed by the other process
//! on a 2-core machine. Results are checked once, outside the timed loops, so a fast but
//! wrong implementation cannot look good.
//!
//! - `mask`: `frame::apply_mask` on 1 MiB against a byte-at-a-time XOR (target ≥ 5 GB/s).
//! - `frames`: a buffer of many small masked frames through `protocol::Protocol`, fed whole
//!   and in 4 KiB reads (as a socket delivers it), against a minimal hand-written parser
//!   that only decodes headers, unmasks and checks text (no state machine, no error paths).
//! - `utf8`: one masked 4 MiB text frame of multi-byte UTF-8 through `Protocol` (whole and in
//!   64 KiB reads), against `std::str::from_utf8` on the same bytes, and against the least
//!   any server must do: copy + unmask + `from_utf8`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pure_ws::frame::apply_mask;
use pure_ws::message::{Event, Message};
use pure_ws::protocol::Protocol;

/// Runs `f` `reps` times and returns the fastest run.
fn best_of(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// Runs each of `cases` once per repetition, in turn, `reps` times, and returns the
/// fastest run of each.
fn best_of_each<const N: usize>(reps: usize, mut cases: [&mut dyn FnMut(); N]) -> [Duration; N] {
    let mut best = [Duration::MAX; N];
    for _ in 0..reps {
        for (case, best) in cases.iter_mut().zip(&mut best) {
            let t = Instant::now();
            case();
            *best = (*best).min(t.elapsed());
        }
    }
    best
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn report(name: &str, figure: f64, unit: &str, baseline: Option<f64>) {
    match baseline {
        Some(b) => println!(
            "{name:<44} {figure:>10.2} {unit:<9} ({:.2}x baseline)",
            figure / b
        ),
        None => println!("{name:<44} {figure:>10.2} {unit:<9} (baseline)"),
    }
}

/// Deterministic filler (xorshift64), so runs are comparable and no `rand` is needed.
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// The RFC 6455 §5.3 definition, one byte at a time: the baseline for `apply_mask`.
/// `#[inline(never)]` and black-boxed inputs keep it an honest loop of its own.
#[inline(never)]
fn naive_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// A masked client frame (FIN set). Written here rather than taken from the library, so a
/// bug in the library's encoder cannot hide one in its parser.
fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

// ---------------------------------------------------------------------------------------------
// mask
// ---------------------------------------------------------------------------------------------

fn bench_mask(reps: usize) {
    println!("\n== unmasking 1 MiB (apply_mask vs byte-at-a-time) ==");
    const LEN: usize = 1 << 20;
    // 16 passes per repetition: long enough for the timer, small enough to stay in cache.
    const PASSES: usize = 16;
    let key = black_box([0x37, 0xfa, 0x21, 0x3d]);
    let original = pseudo_random(LEN, 1);

    // Correctness first, at an offset that needs the key rotated and an odd length.
    for offset in [0, 1, 2, 3, 5] {
        let (mut a, mut b) = (original[..LEN - 3].to_vec(), original[..LEN - 3].to_vec());
        apply_mask(&mut a, key, offset);
        naive_mask(&mut b, key, offset);
        assert_eq!(
            a, b,
            "apply_mask disagrees with the byte loop at offset {offset}"
        );
    }

    let mut buf = original.clone();
    let naive = best_of(reps, || {
        for _ in 0..PASSES {
            naive_mask(black_box(&mut buf), key, black_box(0));
        }
    });
    let base = gbps(LEN * PASSES, naive);
    report("byte-at-a-time XOR", base, "GB/s", None);
    for offset in [0usize, 1] {
        let t = best_of(reps, || {
            for _ in 0..PASSES {
                apply_mask(black_box(&mut buf), key, black_box(offset));
            }
        });
        let rate = gbps(LEN * PASSES, t);
        report(
            &format!("apply_mask (offset {offset})"),
            rate,
            "GB/s",
            Some(base),
        );
        if rate < 5.0 {
            println!("  note: below the 5 GB/s target");
        }
    }
    black_box(&buf);
}

// ---------------------------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------------------------

/// The baseline parser: header decode, payload copied out and unmasked eight bytes at a time,
/// text checked with `from_utf8`. It assumes well-formed, unfragmented, masked frames and
/// keeps no state: the cost floor for the parse.
#[inline(never)]
fn minimal_parse(mut input: &[u8], scratch: &mut Vec<u8>) -> usize {
    let mut frames = 0;
    while input.len() >= 2 {
        let len7 = (input[1] & 0x7F) as usize;
        let (len, mut at) = match len7 {
            126 => (u16::from_be_bytes([input[2], input[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(input[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n, 2),
        };
        let key: [u8; 4] = input[at..at + 4].try_into().unwrap();
        at += 4;
        scratch.clear();
        scratch.extend_from_slice(&input[at..at + len]);
        let k8 = u64::from_ne_bytes([
            key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
        ]);
        let mut chunks = scratch.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = u64::from_ne_bytes((&*c).try_into().unwrap()) ^ k8;
            c.copy_from_slice(&v.to_ne_bytes());
        }
        for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        if input[0] & 0x0F == 0x1 {
            assert!(std::str::from_utf8(scratch).is_ok());
        }
        black_box(&scratch);
        input = &input[at + len..];
        frames += 1;
    }
    frames
}

/// One `receive` call, and the message it announced, if any. Any event other than a message
/// is a bug in the benchmark or the library.
fn receive_message<'a>(
    p: &'a mut Protocol,
    input: &'a mut [u8],
    out: &mut Vec<u8>,
) -> (usize, Option<Message<'a>>) {
    let (used, event) = p.receive(input, out);
    let p: &'a Protocol = p;
    match event {
        None => (used, None),
        Some(Event::Message(delivery)) => (used, p.message(&delivery)),
        Some(other) => panic!("unexpected event {other:?}"),
    }
}

/// Feeds `input` to a fresh `Protocol` in `chunk`-byte reads; returns the messages seen and the
/// bytes they held. Any other event is a bug in the benchmark or the library. Each chunk is
/// first copied into a read buffer, as `read()` does in the server (the protocol unmasks
/// whole messages in place, so it needs its own copy anyway).
#[inline(never)]
fn protocol_feed(input: &[u8], chunk: usize, max_message: usize) -> (usize, usize) {
    let mut p = Protocol::new(max_message);
    let mut out = Vec::new();
    let mut read_buf = Vec::with_capacity(chunk.min(input.len()));
    let (mut messages, mut bytes) = (0, 0);
    for piece in input.chunks(chunk) {
        read_buf.clear();
        read_buf.extend_from_slice(piece);
        let mut at = 0;
        while at < read_buf.len() {
            let (used, message) = receive_message(&mut p, &mut read_buf[at..], &mut out);
            at += used;
            match message {
                Some(Message::Text(t)) => {
                    messages += 1;
                    bytes += black_box(t).len();
                }
                Some(Message::Binary(b)) => {
                    messages += 1;
                    bytes += black_box(b).len();
                }
                None => {}
            }
        }
    }
    assert!(
        out.is_empty(),
        "the protocol wanted to send {} bytes",
        out.len()
    );
    (messages, bytes)
}

fn bench_frames(reps: usize) {
    println!("\n== parsing small masked frames (Protocol vs minimal parser) ==");
    for (label, opcode, size) in [
        ("16 B binary", 0x2u8, 16usize),
        ("16 B text", 0x1, 16),
        ("200 B binary", 0x2, 200),
    ] {
        const FRAMES: usize = 100_000;
        let mut input = Vec::with_capacity(FRAMES * (size + 14));
        let payload: Vec<u8> = if opcode == 0x1 {
            "0123456789abcdefghij".repeat(size / 20 + 1)[..size].into()
        } else {
            pseudo_random(size, 7)
        };
        for i in 0..FRAMES {
            client_frame(
                &mut input,
                opcode,
                &payload,
                (i as u32).wrapping_mul(2_654_435_761).to_ne_bytes(),
            );
        }

        // Check the library parses every frame back to the same payload.
        {
            let mut p = Protocol::new(1 << 20);
            let mut out = Vec::new();
            let mut rest = input.clone();
            let mut at = 0;
            let mut n = 0;
            while at < rest.len() {
                let (used, message) = receive_message(&mut p, &mut rest[at..], &mut out);
                at += used;
                match message {
                    Some(Message::Text(t)) => assert_eq!(t.as_bytes(), &payload[..]),
                    Some(Message::Binary(b)) => assert_eq!(b, &payload[..]),
                    None => continue,
                }
                n += 1;
            }
            assert_eq!(n, FRAMES, "lost frames");
        }

        // The three take turns, repetition by repetition, so a change in the machine's
        // speed during the run (the other core's load, the clock) touches all of them.
        let mut scratch = Vec::with_capacity(size);
        let [base, whole, reads] = best_of_each(
            reps,
            [
                &mut || assert_eq!(minimal_parse(black_box(&input), &mut scratch), FRAMES),
                &mut || {
                    assert_eq!(
                        protocol_feed(black_box(&input), input.len(), 1 << 20).0,
                        FRAMES
                    )
                },
                &mut || assert_eq!(protocol_feed(black_box(&input), 4096, 1 << 20).0, FRAMES),
            ],
        )
        .map(|t| FRAMES as f64 / t.as_secs_f64() / 1e6);
        report(
            &format!("{label}: minimal parser"),
            base,
            "M frames/s",
            None,
        );
        for (how, rate) in [("whole buffer", whole), ("4 KiB reads", reads)] {
            report(
                &format!("{label}: Protocol, {how}"),
                rate,
                "M frames/s",
                Some(base),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// utf8
// ---------------------------------------------------------------------------------------------

fn bench_utf8(reps: usize) {
    println!(
        "\n== UTF-8: a masked 4 MiB multi-byte text frame (Protocol vs std::str::from_utf8) =="
    );
    const LEN: usize = 4 << 20;
    // 1-, 2-, 3- and 4-byte sequences, so the validator cannot stay on its ASCII fast path.
    let sample = "héllo wörld — ναί, 日本語のテキスト, 🦀🚀 ok; ";
    let mut text = sample.repeat(LEN / sample.len() + 1);
    let mut cut = LEN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let bytes = text.as_bytes();
    let key = [0xA1, 0x5C, 0x03, 0x77];
    let mut frame = Vec::with_capacity(bytes.len() + 14);
    client_frame(&mut frame, 0x1, bytes, key);

    // Correctness: the library hands back exactly the text, for both feeding patterns.
    for chunk in [frame.len(), 64 << 10] {
        let mut p = Protocol::new(16 << 20);
        let mut out = Vec::new();
        let mut got = None;
        let mut frame = frame.clone();
        for piece in frame.chunks_mut(chunk) {
            let mut at = 0;
            while at < piece.len() {
                let (used, message) = receive_message(&mut p, &mut piece[at..], &mut out);
                at += used;
                match message {
                    Some(Message::Text(t)) => got = Some(t == text),
                    Some(Message::Binary(_)) => panic!("a text frame came out as binary"),
                    None => {}
                }
            }
        }
        assert_eq!(
            got,
            Some(true),
            "4 MiB text not delivered intact (chunk {chunk})"
        );
    }

    let t = best_of(reps, || {
        assert!(std::str::from_utf8(black_box(bytes)).is_ok());
    });
    let base = gbps(bytes.len(), t);
    report("std::str::from_utf8", base, "GB/s", None);

    // The floor for a server: copy out of the read buffer, unmask, validate.
    let mut copy = Vec::with_capacity(frame.len());
    let t = best_of(reps, || {
        copy.clear();
        copy.extend_from_slice(&black_box(&frame)[14..]);
        apply_mask(&mut copy, key, 0);
        assert!(std::str::from_utf8(&copy).is_ok());
    });
    report(
        "copy + apply_mask + from_utf8",
        gbps(bytes.len(), t),
        "GB/s",
        Some(base),
    );

    for chunk in [frame.len(), 64 << 10] {
        let t = best_of(reps, || {
            let (n, len) = protocol_feed(black_box(&frame), chunk, 16 << 20);
            assert_eq!((n, len), (1, bytes.len()));
        });
        let how = if chunk == frame.len() {
            "whole frame"
        } else {
            "64 KiB reads"
        };
        report(
            &format!("Protocol, {how}"),
            gbps(bytes.len(), t),
            "GB/s",
            Some(base),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything but `--quick` is ignored.
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 15 };
    println!("pure-ws micro-benchmarks: best of {reps} repetitions");
    bench_mask(reps);
    bench_frames(reps);
    bench_utf8(reps);
}
