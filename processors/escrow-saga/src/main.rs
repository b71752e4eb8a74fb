/// Not glibc's malloc: librdkafka's threads free the records the loop handed
/// them, and the loop then queued on glibc's arena lock (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_escrow_saga::cli::main()
}
