//! Ingest's CPU per record without a broker: the ingest bench's records
//! (`src/ingest_records.rs`) translated, then processed and encoded by the
//! runtime's engine as the loop does it, each phase timed over every
//! record. What the throughput bench's ingest rounds spend outside
//! librdkafka, split by phase, so a change to either shows in isolation.
//!
//! `SAGASTREAM_BENCH_TRANSLATE` (default 200000) records, 5 passes; the
//! figures are each phase's fastest pass, in µs per record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sagastream_contract::ContentMode;
use sagastream_ingest::Ingest;
use sagastream_runtime::engine::{Engine, EngineConfig, Input, OutputFormat};
use sagastream_runtime::metrics::Metrics;
use sagastream_runtime::Processor;

// The allocator the processors run with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("SAGASTREAM_BENCH_TRANSLATE").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let inputs = sagastream_bench::ingest_records::inputs(n);
    let ingest = Ingest;
    let config = EngineConfig {
        group: "bench".into(),
        dedup_window: 32,
        output_formats: sagastream_ingest::OUTPUTS
            .iter()
            .map(|t| (*t, OutputFormat::Json(ContentMode::Binary)))
            .collect::<HashMap<_, _>>(),
        avro: None,
    };
    let mut engine = Engine::new(Ingest, config, Arc::new(Metrics::new("ingest", "bench")));
    engine.install(0, HashMap::new());
    let (mut translate, mut process) = (f64::MAX, f64::MAX);
    let mut bytes = 0usize;
    for _ in 0..5 {
        // One record at a time through both phases, as the processor runs
        // them: nothing piles up in memory that the live process would not hold.
        let (mut t, mut p) = (0.0, 0.0);
        bytes = 0;
        for (offset, (topic, record)) in inputs.iter().enumerate() {
            let started = Instant::now();
            let translation = ingest.translate(record, topic);
            let translated = Instant::now();
            anyhow::ensure!(
                translation.as_ref().is_some_and(|t| t.result.is_ok()),
                "a bench record was refused: the bench measures the wrong path"
            );
            let input =
                Input { topic, source: topic, partition: 0, offset: offset as i64, timestamp_ms: Some(0), record };
            for out in engine.process_translated(&input, Some(translation))? {
                bytes += out.record.value.as_ref().map_or(0, Vec::len)
                    + out
                        .record
                        .headers
                        .iter()
                        .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
                        .sum::<usize>();
            }
            t += (translated - started).as_secs_f64();
            p += translated.elapsed().as_secs_f64();
        }
        translate = translate.min(t);
        process = process.min(p);
    }
    let per = |s: f64| s * 1e6 / n as f64;
    println!("ingest translate                  {:6.2} µs/record  ({n} records, fastest of 5 passes)", per(translate));
    println!("engine process + encode           {:6.2} µs/record", per(process));
    println!("output bytes                      {:6.0} per record (value and headers)", bytes as f64 / n as f64);
    Ok(())
}
