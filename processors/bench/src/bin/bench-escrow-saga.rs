//! The escrow saga as the benchmarks run it: the same code as
//! `sagastream-escrow-saga`, built by cargo with the bench.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_escrow_saga::cli::main()
}
