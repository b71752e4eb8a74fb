/// As every processor: not glibc's malloc (see sagastream-escrow-saga's main).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_probe::cli::main()
}
