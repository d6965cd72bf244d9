//! The `mapce` binary: everything lives in the library (`mapce::cli`).

fn main() -> std::process::ExitCode {
    mapce::cli::main()
}
