//! The `mapce` binary: everything lives in the library (`mapce::cli`).

// mimalloc: the legacy import and the indicator scans allocate and free
// millions of small strings; glibc's allocator spent ~13 % of an import's
// time (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mapce::cli::main()
}
