//! The fuzzer (see `fuzz/README.md`): `cargo test -p gannet-fuzz --test fuzz` replays every
//! seed and saved crash; `scripts/fuzz.sh SECONDS` fuzzes every target for that long.

#[global_allocator]
static ALLOC: gannet_fuzz::alloc::LimitAlloc = gannet_fuzz::alloc::LimitAlloc;

fn main() -> std::process::ExitCode {
    gannet_fuzz::runner::main()
}
