//! The ingest processor as the benchmarks run it: the same code as
//! `sagastream-ingest`, built by cargo with the bench.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_ingest::cli::main()
}
