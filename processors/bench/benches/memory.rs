//! Heap bytes per active escrow saga, as the runtime's engine holds it
//! (state, timers, the ids kept for de-duplication, the timer index, the
//! map entry), counted by a global allocator: no broker, no allocator
//! slack, no client buffers. Each booking gets the five booking facts of a
//! delivery, so every saga is active and waiting for its escrow hold.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use sagastream_contract::{encode, ContentMode, Event};
use sagastream_escrow_saga::EscrowSaga;
use sagastream_runtime::engine::{Engine, EngineConfig, Input, OutputFormat};
use sagastream_runtime::metrics::Metrics;
use sagastream_runtime::Processor;

struct Counting;

/// Bytes requested and still live.
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The same as glibc malloc chunks: 8 bytes of header, 16-byte multiples, 32 at least.
static CHUNKS: AtomicIsize = AtomicIsize::new(0);

fn chunk(size: usize) -> isize {
    ((size + 8 + 15) & !15).max(32) as isize
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_add(chunk(layout.size()), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_sub(chunk(layout.size()), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_add(chunk(new_size) - chunk(layout.size()), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

mod common;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let bookings: usize =
        std::env::var("SAGASTREAM_BENCH_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let saga = EscrowSaga::default();
    let spec = saga.spec();
    let formats = spec.outputs.iter().map(|t| (*t, OutputFormat::Json(ContentMode::Binary))).collect();
    let config = EngineConfig { group: "bench".into(), dedup_window: 32, output_formats: formats, avro: None };
    let mut engine = Engine::new(saga, config, Arc::new(Metrics::new("escrow-saga", "bench")));
    engine.install(0, HashMap::new());
    let (before, chunks_before) = (LIVE.load(Ordering::Relaxed), CHUNKS.load(Ordering::Relaxed));
    let now = Utc::now();
    let mut offset = 0i64;
    for i in 0..bookings {
        let booking = common::Booking {
            id: format!("bk-{i:07}"),
            number: format!("KLT-{i}"),
            owner: format!("own-{i:05}"),
            runner: format!("run-{:03}", i % 97),
            price: 4_501,
        };
        let facts = common::delivery(&booking, now);
        for fact in facts {
            let record = encode(&Event::new("/bench", fact).with_time(now), ContentMode::Binary).unwrap();
            let input = Input {
                topic: "booking.events",
                source: "booking.events",
                partition: 0,
                offset,
                timestamp_ms: None,
                record: &record,
            };
            drop(engine.process(&input).expect("owned partition"));
            offset += 1;
        }
        if i % 1_000 == 999 {
            drop(engine.changelog(&BTreeMap::from([(0, BTreeMap::from([("booking.events", offset)]))])));
            engine.commit();
        }
    }
    drop(engine.changelog(&BTreeMap::from([(0, BTreeMap::from([("booking.events", offset)]))])));
    engine.commit();
    let per = (LIVE.load(Ordering::Relaxed) - before) as f64 / bookings as f64;
    let per_chunk = (CHUNKS.load(Ordering::Relaxed) - chunks_before) as f64 / bookings as f64;
    println!(
        "memory per active saga: {per:.0} bytes requested, {per_chunk:.0} bytes as malloc chunks, over {bookings} sagas (target ≤ 1024)"
    );
}
