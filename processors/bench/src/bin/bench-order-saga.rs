//! The order saga as the benchmarks run it: the same code as
//! `sagastream-order-saga`, built by cargo with the bench.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_order_saga::cli::main()
}
