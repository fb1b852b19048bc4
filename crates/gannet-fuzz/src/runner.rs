//! The fuzzer: a supervisor process and a worker process.
//!
//! The worker loads the seeds, then mutates and runs inputs until its time is up. Before each
//! input it copies the input into a memory-mapped file shared with the supervisor, so whatever
//! kills the worker (an abort, a stack overflow, the supervisor's own kill after a timeout or
//! over the memory limit) leaves the input behind. A panic anywhere (also in a thread that
//! catches it, like the studio's model workers or rayon's) or an allocation over the limits
//! (see [`crate::alloc`]) is reported by the worker itself, with the panic's location and a
//! backtrace. Every crash input is written to the crash folder and the process exits non-zero.
//!
//! Without coverage instrumentation (stable Rust), the corpus grows by outcome instead: an input
//! whose result (the error message with numbers and quoted text blanked) was not seen before is
//! kept, so inputs that reach new checks are mutated further.

use crate::mutate::{mutate_bytes, Rng};
use crate::targets::{self, Target};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

/// Header of the shared file: exec counter, in-exec flag, input length; the input follows.
const SHM_HEADER: usize = 24;
/// Longest input any target takes (the IDX gzip-bomb inputs are the largest).
pub const SHM_MAX_INPUT: usize = 16 << 20;
const ENV_WORKER: &str = "GANNET_FUZZ_WORKER";
/// A file of the crash locations already reported (a restarted worker reports only new ones).
const ENV_KEYS: &str = "GANNET_FUZZ_KEYS";
/// Set for a worker started again after a crash: it skips the saved crashes among the seeds.
const ENV_RESTART: &str = "GANNET_FUZZ_RESTART";
/// Replay: the number of seeds a worker started again skips.
const ENV_SKIP: &str = "GANNET_FUZZ_SKIP";
/// A worker that replayed every seed, some of which crashed.
const EXIT_REPLAYED_WITH_CRASHES: u8 = 3;

#[derive(Debug, Clone)]
pub struct Options {
    pub targets: Vec<String>,
    /// Fuzzing seconds per target; `None`: replay the seeds only.
    pub seconds: Option<u64>,
    pub timeout_s: u64,
    pub malloc_limit_mb: usize,
    pub rss_limit_mb: usize,
    pub seeds: PathBuf,
    pub crashes: PathBuf,
    pub rng_seed: Option<u64>,
    /// Go on after a crash (new crash locations only) instead of stopping at the first.
    pub keep_going: bool,
    /// Runs of these files only (replay).
    pub inputs: Vec<PathBuf>,
}

fn usage() -> String {
    format!(
        "usage: fuzz [TARGET...] [--seconds N] [--timeout S] [--malloc-limit-mb M] [--rss-limit-mb M] \
         [--seeds DIR] [--crashes DIR] [--seed N] [--keep-going] [--input FILE...]\n\
         With no --seconds: runs every seed (and saved crash) of the targets once.\n\
         targets: {}",
        targets::NAMES.join(", ")
    )
}

fn repo_root() -> PathBuf {
    // crates/gannet-fuzz -> the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let root = repo_root();
    let mut o = Options {
        targets: Vec::new(),
        seconds: None,
        timeout_s: 20,
        malloc_limit_mb: 1024,
        rss_limit_mb: 2048,
        seeds: root.join("fuzz/seeds"),
        crashes: root.join("fuzz/crashes"),
        rng_seed: None,
        keep_going: false,
        inputs: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value\n{}", usage()));
        let num = |v: String, name: &str| v.parse::<u64>().map_err(|_| format!("{name}: not a number: {v}"));
        match a.as_str() {
            "--seconds" => o.seconds = Some(num(val(a)?, a)?),
            "--timeout" => o.timeout_s = num(val(a)?, a)?.max(1),
            "--malloc-limit-mb" => o.malloc_limit_mb = num(val(a)?, a)? as usize,
            "--rss-limit-mb" => o.rss_limit_mb = num(val(a)?, a)? as usize,
            "--seeds" => o.seeds = PathBuf::from(val(a)?),
            "--crashes" => o.crashes = PathBuf::from(val(a)?),
            "--seed" => o.rng_seed = Some(num(val(a)?, a)?),
            "--keep-going" => o.keep_going = true,
            "--input" => o.inputs.push(PathBuf::from(val(a)?)),
            "-h" | "--help" => return Err(usage()),
            // Flags `cargo test` may pass to a test binary.
            "--nocapture" | "--quiet" | "-q" | "--test-threads" | "--color" | "--format" => {}
            t if targets::NAMES.contains(&t) => o.targets.push(t.to_string()),
            "all" => o.targets.extend(targets::NAMES.iter().map(|s| s.to_string())),
            other if other.starts_with('-') => eprintln!("fuzz: ignoring the option {other}"),
            // A test-name filter from `cargo test NAME`: not one of ours, nothing to run.
            _ => {}
        }
    }
    if o.targets.is_empty() {
        o.targets = targets::NAMES.iter().map(|s| s.to_string()).collect();
    }
    Ok(o)
}

/// Entry point of the fuzz binary: the supervisor unless started as a worker.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list` (IDEs, nextest): one test.
        if !args.iter().any(|a| a == "--ignored") {
            println!("replay_seeds: test");
        }
        return ExitCode::SUCCESS;
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Ok(shm) = std::env::var(ENV_WORKER) {
        return worker(&opts, Path::new(&shm));
    }
    let mut failed = Vec::new();
    for t in &opts.targets {
        if !supervise(&opts, t) {
            failed.push(t.clone());
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fuzz: FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs one target in a worker process and watches it; true when it ended without a crash.
/// With --keep-going a worker that ended on a crash is started again for the time left.
fn supervise(opts: &Options, target: &str) -> bool {
    let dir = scratch_dir(target);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(dir.join("work")) {
        eprintln!("fuzz: cannot create {}: {e}", dir.display());
        return false;
    }
    let shm = dir.join("current-input");
    let file = std::fs::File::create(&shm).and_then(|f| f.set_len((SHM_HEADER + SHM_MAX_INPUT) as u64).map(|_| f));
    if let Err(e) = file {
        eprintln!("fuzz: cannot create {}: {e}", shm.display());
        return false;
    }
    let end = opts.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut clean = true;
    let mut skip = 0;
    for restart in 0.. {
        let seconds = end.map(|e| e.saturating_duration_since(Instant::now()).as_secs());
        let (ok, crashed) = run_worker(opts, target, &dir, &shm, seconds, restart > 0, skip);
        clean &= ok;
        if ok || !crashed {
            break;
        }
        match seconds {
            // Replay: go on after the seed that ended the worker.
            None => skip = read_header(&shm).0 as usize,
            Some(_) if opts.keep_going && end.is_some_and(|e| e.saturating_duration_since(Instant::now()) > Duration::from_secs(5)) => {
                eprintln!("fuzz[{target}]: starting the worker again (--keep-going)");
            }
            Some(_) => break,
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    clean
}

/// (ended well, ended on a crash): a worker that fails otherwise (its setup) is not restarted.
fn run_worker(opts: &Options, target: &str, dir: &Path, shm: &Path, seconds: Option<u64>, restart: bool, skip: usize) -> (bool, bool) {
    let exe = std::env::current_exe().expect("the fuzzer's own path");
    let mut args: Vec<String> = vec![target.into(), "--timeout".into(), opts.timeout_s.to_string()];
    args.extend(["--malloc-limit-mb".into(), opts.malloc_limit_mb.to_string(), "--rss-limit-mb".into(), opts.rss_limit_mb.to_string()]);
    args.extend(["--seeds".into(), opts.seeds.display().to_string(), "--crashes".into(), opts.crashes.display().to_string()]);
    if let Some(s) = seconds {
        args.extend(["--seconds".into(), s.to_string()]);
    }
    if let Some(s) = opts.rng_seed {
        args.extend(["--seed".into(), s.to_string()]);
    }
    if opts.keep_going {
        args.push("--keep-going".into());
    }
    for i in &opts.inputs {
        args.extend(["--input".into(), i.display().to_string()]);
    }
    let mut cmd = Command::new(&exe);
    cmd.args(&args).env(ENV_WORKER, shm).env(ENV_KEYS, dir.join("crash-keys"));
    if restart && seconds.is_some() {
        cmd.env(ENV_RESTART, "1");
    }
    cmd.env(ENV_SKIP, skip.to_string());
    // A fresh input file: a worker that dies before its first input must not leave the last one.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(shm) {
        let _ = f.write_all(&[0u8; SHM_HEADER]);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fuzz: cannot start the worker: {e}");
            return (false, false);
        }
    };
    // Setup (seed checkpoints, a studio) and a replay of big seeds may take a while on a busy
    // machine; past this the worker is stuck.
    let hard_deadline = Instant::now() + Duration::from_secs(seconds.unwrap_or(0) + 300 + opts.timeout_s);
    let (mut last_count, mut since) = (u64::MAX, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(100));
        match child.try_wait() {
            Ok(Some(status)) => {
                match status.code() {
                    Some(0) => return (true, false),
                    // A crash the worker reported itself (and stopped).
                    Some(1) => return (false, true),
                    // Replayed every seed; some crashed (reported).
                    Some(c) if c == EXIT_REPLAYED_WITH_CRASHES as i32 => return (false, false),
                    _ => {}
                }
                // Killed by a signal (abort, stack overflow) or another exit: the input is in the shared file.
                let what = match status.code() {
                    Some(c) => format!("the worker exited with status {c}"),
                    None => format!("the worker died: {status}"),
                };
                if read_header(shm).1 {
                    save_from_shm(&shm_copy(shm), opts, target, "crash", &what);
                    return (false, true);
                }
                eprintln!("fuzz[{target}]: {what} (not while running an input)");
                return (false, false);
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("fuzz: waiting for the worker: {e}");
                return (false, false);
            }
        }
        let header = read_header(shm);
        let (count, in_exec) = (header.0, header.1);
        if count != last_count {
            (last_count, since) = (count, Instant::now());
        }
        let rss = rss_mb(child.id());
        let verdict = if in_exec && since.elapsed() > Duration::from_secs(opts.timeout_s) {
            Some(("timeout", format!("timeout: one input ran for more than {} s", opts.timeout_s)))
        } else if rss > opts.rss_limit_mb {
            Some(("oom", format!("out-of-memory: the worker's RSS is {rss} MiB (limit {} MiB)", opts.rss_limit_mb)))
        } else if Instant::now() > hard_deadline {
            Some(("timeout", "timeout: the worker did not finish in time".to_string()))
        } else {
            None
        };
        if let Some((kind, what)) = verdict {
            let _ = child.kill();
            let _ = child.wait();
            if in_exec {
                save_from_shm(&shm_copy(shm), opts, target, kind, &what);
            } else {
                eprintln!("fuzz[{target}]: {what} (between inputs)");
            }
            return (false, in_exec);
        }
    }
}

fn shm_copy(shm: &Path) -> Vec<u8> {
    let h = read_header(shm);
    let mut data = vec![0u8; h.2.min(SHM_MAX_INPUT)];
    if let Ok(mut f) = std::fs::File::open(shm) {
        let _ = f.seek(SeekFrom::Start(SHM_HEADER as u64)).and_then(|_| f.read_exact(&mut data));
    }
    data
}

fn read_header(shm: &Path) -> (u64, bool, usize) {
    let mut h = [0u8; SHM_HEADER];
    if let Ok(mut f) = std::fs::File::open(shm) {
        let _ = f.read_exact(&mut h);
    }
    let word = |i: usize| u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().unwrap());
    (word(0), word(1) != 0, word(2) as usize)
}

fn rss_mb(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok()).map_or(0, |kb| kb >> 10)
}

fn save_from_shm(data: &[u8], opts: &Options, target: &str, kind: &str, what: &str) {
    let path = save_crash(&opts.crashes, target, kind, data);
    eprintln!("\n==== fuzz[{target}]: {what}\n==== input ({} bytes) saved to {}", data.len(), path.display());
    print_input(data);
    eprintln!("==== replay: scripts/fuzz.sh --replay {target} {}", path.display());
}

/// Writes a crash input as `<crashes>/<target>/<kind>-<crc>`; returns its path.
pub fn save_crash(crashes: &Path, target: &str, kind: &str, data: &[u8]) -> PathBuf {
    let dir = crashes.join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{kind}-{:08x}", crc32fast::hash(data)));
    if let Err(e) = std::fs::write(&path, data) {
        eprintln!("fuzz: cannot write {}: {e}", path.display());
    }
    path
}

/// The input in the log too (CI keeps the log), as base64 when it is small.
fn print_input(data: &[u8]) {
    if data.len() <= 16 << 10 {
        eprintln!("==== input as base64 (base64 -d > crash):\n{}", gannet_studio::render::base64(data));
    }
}

// ---------------------------------------------------------------- worker

/// The shared file, mapped: the supervisor reads the input of a worker that died.
struct Shm {
    ptr: *mut u8,
}

impl Shm {
    fn open(path: &Path) -> std::io::Result<Shm> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let len = SHM_HEADER + SHM_MAX_INPUT;
        // Touching a mapped page past the end of the file would be a SIGBUS.
        if f.metadata()?.len() < len as u64 {
            return Err(std::io::Error::other(format!("shorter than {len} bytes")));
        }
        // SAFETY: mmap has no preconditions on its arguments (the kernel checks them; a failure is
        // MAP_FAILED). The mapping of the file's first `len` bytes outlives the descriptor and is
        // never unmapped (Shm has no Drop), so `ptr` stays valid for the life of the process.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, f.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Shm { ptr: ptr as *mut u8 })
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < SHM_HEADER / 8, "header word {i}");
        // SAFETY: the header is 3 u64 words (i < 3 above) at the start of a page-aligned mapping
        // that lives as long as the process, touched only through atomics in this process (the
        // supervisor reads the file).
        unsafe { &*(self.ptr.add(i * 8) as *const AtomicU64) }
    }
    fn begin(&self, data: &[u8]) {
        let n = data.len().min(SHM_MAX_INPUT);
        // SAFETY: the mapping holds SHM_MAX_INPUT >= n bytes after the header, and no Rust slice
        // points into it (`data` cannot overlap it).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(SHM_HEADER), n) };
        self.word(2).store(n as u64, Ordering::SeqCst);
        self.word(1).store(1, Ordering::SeqCst);
        self.word(0).fetch_add(1, Ordering::SeqCst);
    }
    fn end(&self) {
        self.word(1).store(0, Ordering::SeqCst);
    }
}

/// A panic seen while an input ran (the first one).
struct PanicReport {
    message: String,
    location: String,
    thread: String,
    backtrace: String,
}

static PANIC: Mutex<Option<PanicReport>> = Mutex::new(None);
static CURRENT: Mutex<Option<(String, PathBuf, Vec<u8>)>> = Mutex::new(None);
/// The seed file being replayed (its crash is reported by name, not saved again).
static REPLAYING: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let backtrace = std::backtrace::Backtrace::force_capture().to_string();
        if let Ok(mut p) = PANIC.lock() {
            if p.is_none() {
                *p = Some(PanicReport { message, location, thread, backtrace });
            }
        }
    }));
}

/// Crash locations reported already (by this worker or one before it).
static KNOWN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn known_keys_file() -> Option<PathBuf> {
    std::env::var_os(ENV_KEYS).map(PathBuf::from)
}

/// Records a crash location; false when it was known.
fn note_key(key: &str) -> bool {
    let mut k = match KNOWN.try_lock() {
        Ok(k) => k,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        // Only the worker's main thread notes keys, so a held lock means this thread crossed a
        // memory limit while noting one (the allocator's report calls this): report it as new
        // rather than hang.
        Err(TryLockError::WouldBlock) => return true,
    };
    let set =
        k.get_or_insert_with(|| known_keys_file().and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default().lines().map(str::to_string).collect());
    if !set.insert(key.to_string()) {
        return false;
    }
    if let Some(f) = known_keys_file() {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(f) {
            let _ = writeln!(f, "{key}");
        }
    }
    true
}

/// The first two frames in gannet's own code above its building blocks (random init,
/// layers, tensor ops): a crash's place, for deduplication.
fn gannet_frame(bt: &str) -> String {
    let generic = ["gannet/src/rng.rs", "gannet/src/nn/", "gannet/src/ops/", "gannet/src/autodiff.rs", "gannet/src/buffer_cache.rs"];
    let frames: Vec<&str> = bt
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("at ./crates/") && !l.contains("gannet-fuzz/"))
        .map(|l| l.trim_start_matches("at ./crates/"))
        .filter(|l| !generic.iter().any(|g| l.starts_with(g)))
        .take(2)
        .collect();
    if frames.is_empty() {
        "?".into()
    } else {
        frames.join(" < ")
    }
}

/// Called by the allocator when an input crosses a memory limit: report and exit.
fn on_memory_limit(msg: String) -> ! {
    let current = CURRENT.lock().ok().and_then(|c| c.clone());
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    let keep_going = std::env::args().any(|a| a == "--keep-going");
    if keep_going && !note_key(&format!("oom at {}", gannet_frame(&bt))) {
        eprintln!("fuzz: {msg} at {} (known)", gannet_frame(&bt));
        let _ = std::io::stderr().flush();
        // SAFETY: _exit has no preconditions; it skips destructors and atexit handlers, which must
        // not run here (we are inside the allocator).
        unsafe { libc::_exit(1) }
    }
    let replaying = REPLAYING.lock().ok().and_then(|r| r.clone());
    if let (Some((target, _, data)), Some(origin)) = (&current, replaying) {
        eprintln!("\n==== fuzz[{target}]: {msg}\n==== at:\n{}", short_backtrace(&bt));
        eprintln!("==== input: {origin}, {} bytes", data.len());
    } else if let Some((target, crashes, data)) = current {
        let path = save_crash(&crashes, &target, "oom", &data);
        eprintln!("\n==== fuzz[{target}]: {msg}\n==== at:\n{}", short_backtrace(&bt));
        eprintln!("==== input ({} bytes) saved to {}", data.len(), path.display());
        print_input(&data);
        eprintln!("==== replay: scripts/fuzz.sh --replay {target} {}", path.display());
    } else {
        eprintln!("fuzz: {msg} outside an input\n{bt}");
    }
    let _ = std::io::stderr().flush();
    // SAFETY: _exit has no preconditions; it skips destructors and atexit handlers, which must
    // not run here (we are inside the allocator).
    unsafe { libc::_exit(1) }
}

/// The frames of a backtrace that matter: gannet's and its dependencies', without the
/// standard library's and the fuzzer's own; the full text when none are left.
fn short_backtrace(bt: &str) -> String {
    let lines: Vec<&str> = bt.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() && out.len() < 60 {
        let name = lines[i];
        let at = lines.get(i + 1).filter(|l| l.trim_start().starts_with("at "));
        i += 1 + at.is_some() as usize;
        let n = name.trim_start();
        // Frame lines start with their number ("  12: name"); anything else (a header) is skipped.
        let index = n.split(':').next().unwrap_or(n);
        if index.trim().parse::<usize>().is_err() {
            continue;
        }
        let f = n.split_once(": ").map_or("", |x| x.1);
        let runtime = ["main", "_start", "__libc_start_main_impl", "__libc_start_call_main", "clone3", "start_thread", "__rust_try", "rust_begin_unwind"];
        let internal = match at {
            Some(a) => {
                a.contains("/rustc/")
                    || a.contains("./csu/")
                    || a.contains("/rayon-")
                    || a.contains("/tokio-")
                    || a.contains("gannet-fuzz/src/runner.rs")
                    || a.contains("gannet-fuzz/src/alloc.rs")
            }
            None => runtime.contains(&f) || f.starts_with("std::") || f.starts_with("core::") || f.starts_with("alloc::") || f.starts_with("__rust"),
        };
        if !internal {
            out.push(name.chars().take(160).collect());
            if let Some(a) = at {
                out.push(a.to_string());
            }
        }
    }
    if out.is_empty() {
        bt.to_string()
    } else {
        out.join("\n")
    }
}

fn load_seeds(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()).unwrap_or_default();
    files.sort();
    files.into_iter().filter_map(|p| read_seed(&p).map(|d| (p, d))).collect()
}

/// A seed file; `NAME.packed.gz` holds a big input (a decompression bomb) gzipped once more.
pub fn read_seed(p: &Path) -> Option<Vec<u8>> {
    let d = std::fs::read(p).ok()?;
    if !p.to_string_lossy().ends_with(".packed.gz") {
        return Some(d);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(d.as_slice()).read_to_end(&mut out).ok()?;
    Some(out)
}

/// The class of an outcome: its words, with every value blanked (numbers, hex, quoted text,
/// odd words like echoed chunk names), so inputs that fail the same check with other values
/// count as one outcome.
pub fn outcome_class(s: &str) -> String {
    let plain = |w: &str| {
        let mut cs = w.chars();
        let first = cs.next().unwrap_or('0');
        w.len() >= 2 && first.is_ascii_alphabetic() && cs.all(|c| c.is_ascii_lowercase() || c == '_')
    };
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut word = String::new();
    let push = |tok: &str, out: &mut String| {
        if tok == "#" && out.ends_with('#') {
            return;
        }
        if !out.is_empty() && tok != ":" {
            out.push(' ');
        }
        out.push_str(tok);
    };
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let w = std::mem::take(word);
            push(if plain(&w) { &w } else { "#" }, out);
        }
    };
    for c in s.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                push("#", &mut out);
            }
            ':' | '|' => push(if c == ':' { ":" } else { "|" }, &mut out),
            _ => {}
        }
        if out.len() >= 400 {
            break;
        }
    }
    flush(&mut word, &mut out);
    out
}

struct Worker<'a> {
    name: String,
    target: Box<dyn Target>,
    opts: &'a Options,
    shm: Shm,
    rng: Rng,
    execs: u64,
    slowest: Duration,
    crashed: bool,
}

enum Verdict {
    Ok(String),
    Crash { kind: &'static str, summary: String, detail: String, key: String },
}

impl Worker<'_> {
    fn exec(&mut self, data: &[u8]) -> Verdict {
        // Nothing is allocated while CURRENT is held: the allocator's report on a crossed memory
        // limit locks it, and on this thread that would hang. The last input goes first, so that a
        // copy crossing the limit is not blamed on it.
        if let Ok(mut c) = CURRENT.lock() {
            *c = None;
        }
        let current = Some((self.name.clone(), self.opts.crashes.clone(), data.to_vec()));
        if let Ok(mut c) = CURRENT.lock() {
            *c = current;
        }
        self.shm.begin(data);
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.target.run(data)));
        let took = t0.elapsed();
        self.shm.end();
        self.execs += 1;
        self.slowest = self.slowest.max(took);
        let panic = PANIC.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = panic {
            let caught = if result.is_ok() { " (caught inside the library; it still ran a panic)" } else { "" };
            return Verdict::Crash {
                kind: "crash",
                summary: format!("panic in thread '{}' at {}: {}{caught}", p.thread, p.location, p.message),
                detail: short_backtrace(&p.backtrace),
                key: format!("{} in {}", p.location, gannet_frame(&p.backtrace)),
            };
        }
        match result {
            Ok(outcome) if took > Duration::from_secs(self.opts.timeout_s) => Verdict::Crash {
                kind: "timeout",
                summary: format!("timeout: one input ran for {:.1} s (limit {} s); it ended with: {outcome}", took.as_secs_f64(), self.opts.timeout_s),
                detail: String::new(),
                key: format!("slow {}", outcome_class(&outcome)),
            },
            Ok(outcome) => Verdict::Ok(outcome),
            Err(_) => Verdict::Crash { kind: "crash", summary: "panic (no report)".into(), detail: String::new(), key: "panic".into() },
        }
    }

    /// Reports a crash (a new crash location only, unless `replay`: a seed that crashes is
    /// always reported, and not saved again); true when the worker should stop.
    fn report(&mut self, data: &[u8], v: &Verdict, origin: &str, replay: bool) -> bool {
        let Verdict::Crash { kind, summary, detail, key } = v else { return false };
        self.crashed = true;
        if note_key(key) || replay {
            eprintln!("\n==== fuzz[{}]: {summary}", self.name);
            if !detail.is_empty() {
                eprintln!("==== backtrace (gannet frames):\n{detail}");
            }
            if replay {
                eprintln!("==== input: {origin}, {} bytes", data.len());
            } else {
                let path = save_crash(&self.opts.crashes, &self.name, kind, data);
                eprintln!("==== input: {origin}, {} bytes, saved to {}", data.len(), path.display());
                print_input(data);
                eprintln!("==== replay: scripts/fuzz.sh --replay {} {}", self.name, path.display());
            }
        }
        !self.opts.keep_going
    }
}

fn worker(opts: &Options, shm_path: &Path) -> ExitCode {
    let name = opts.targets[0].clone();
    install_panic_hook();
    let shm = match Shm::open(shm_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fuzz: cannot map {}: {e}", shm_path.display());
            return ExitCode::from(2);
        }
    };
    let work = shm_path.parent().expect("the scratch folder").join("work");
    // A worker started again finds its predecessor's files.
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::create_dir_all(&work);
    let t_setup = Instant::now();
    let mut target = match targets::make(&name, &work) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fuzz[{name}]: setup failed: {e}");
            return ExitCode::from(2);
        }
    };
    // Seeds: the committed files (saved crashes among them), then those the target builds.
    let restarted = std::env::var_os(ENV_RESTART).is_some();
    let is_crash = |p: &Path| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| ["crash-", "oom-", "timeout-"].iter().any(|k| n.starts_with(k)));
    let mut seeds: Vec<(String, Vec<u8>)> = if opts.inputs.is_empty() {
        load_seeds(&opts.seeds.join(&name)).into_iter().filter(|(p, _)| !(restarted && is_crash(p))).map(|(p, d)| (p.display().to_string(), d)).collect()
    } else {
        opts.inputs.iter().map(|p| (p.display().to_string(), read_seed(p).unwrap_or_else(|| panic!("cannot read {}", p.display())))).collect()
    };
    if opts.inputs.is_empty() {
        let known: HashSet<u32> = seeds.iter().map(|(_, d)| crc32fast::hash(d)).collect();
        let extra: Vec<Vec<u8>> = target.extra_seeds().into_iter().filter(|d| !known.contains(&crc32fast::hash(d))).collect();
        if std::env::var_os("GANNET_FUZZ_WRITE_SEEDS").is_some() {
            // Commits the built-in seeds as files (when the library's formats change, delete the
            // old ones and run again).
            let dir = opts.seeds.join(&name);
            let _ = std::fs::create_dir_all(&dir);
            for d in &extra {
                let _ = std::fs::write(dir.join(format!("seed-{:08x}", crc32fast::hash(d))), d);
            }
            eprintln!("fuzz[{name}]: wrote {} seeds to {}", extra.len(), dir.display());
        }
        seeds.extend(extra.into_iter().enumerate().map(|(i, d)| (format!("built-in seed {i}"), d)));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    crate::alloc::arm(opts.malloc_limit_mb << 20, opts.rss_limit_mb << 20, on_memory_limit);
    // The library plans its allocations against this budget (as `gannet --max-memory` does):
    // what fits in it must stay under the malloc limit, what does not must be refused.
    gannet::limits::set_max_memory((opts.malloc_limit_mb as u64) << 20);
    let rng_seed = opts.rng_seed.unwrap_or_else(now_ms);
    let mut w = Worker { name: name.clone(), target, opts, shm, rng: Rng::new(rng_seed), execs: 0, slowest: Duration::ZERO, crashed: false };
    // Replay: every seed once.
    let mut seen = HashSet::new();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let t_replay = Instant::now();
    // A worker started again after a replayed seed ended the process skips the seeds done.
    let skip: usize = std::env::var(ENV_SKIP).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    for (i, (origin, data)) in seeds.iter().enumerate() {
        if i < skip {
            w.shm.begin(&[]);
            w.shm.end();
            continue;
        }
        // Copied before locking, as CURRENT in exec: the memory-limit report locks REPLAYING too.
        let replaying = Some(origin.clone());
        if let Ok(mut r) = REPLAYING.lock() {
            *r = replaying;
        }
        crate::alloc::take_peak();
        let t = Instant::now();
        let v = w.exec(data);
        if std::env::var_os("GANNET_FUZZ_VERBOSE").is_some() {
            let what = match &v {
                Verdict::Ok(o) => o.chars().take(300).collect::<String>(),
                Verdict::Crash { summary, .. } => summary.clone(),
            };
            eprintln!("  {origin}: {:.2} s, heap peak {} MiB: {what}", t.elapsed().as_secs_f64(), crate::alloc::take_peak() >> 20);
        }
        match &v {
            Verdict::Ok(outcome) => {
                seen.insert(outcome_class(outcome));
            }
            Verdict::Crash { .. } => {
                w.report(data, &v, origin, true);
            }
        }
        corpus.push(data.clone());
    }
    if let Ok(mut r) = REPLAYING.lock() {
        *r = None;
    }
    eprintln!(
        "fuzz[{name}]: setup {setup_s:.1} s, replayed {} seeds in {:.1} s ({} outcomes){}",
        seeds.len(),
        t_replay.elapsed().as_secs_f64(),
        seen.len(),
        if w.crashed { ", SOME CRASHED" } else { "" }
    );
    let Some(seconds) = opts.seconds else {
        return if w.crashed { ExitCode::from(EXIT_REPLAYED_WITH_CRASHES) } else { ExitCode::SUCCESS };
    };
    if w.crashed && !opts.keep_going {
        return ExitCode::FAILURE;
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let dict = w.target.dictionary();
    let max_len = w.target.max_len();
    let share = w.target.custom_share();
    let n_seeds = corpus.len();
    let mut per_prefix = std::collections::HashMap::new();
    eprintln!("fuzz[{name}]: fuzzing for {seconds} s (rng seed {rng_seed}, {} dictionary tokens)", dict.len());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds);
    let mut next_status = t0 + Duration::from_secs(10);
    let execs_before = w.execs;
    while Instant::now() < deadline {
        // Half the time a seed: the inputs kept for new outcomes are mostly broken ones.
        let base = if w.rng.one_in(2) { w.rng.below(n_seeds) } else { w.rng.below(corpus.len()) };
        let mut data = corpus[base].clone();
        let other = corpus[w.rng.below(corpus.len())].clone();
        let stack = if w.rng.one_in(4) { 8 } else { 3 };
        let n = 1 + w.rng.below(stack);
        for _ in 0..n {
            if !(w.rng.below(10) < share && w.target.mutate(&mut data, &mut w.rng, &other)) {
                mutate_bytes(&mut data, &mut w.rng, &other, &dict, max_len);
            }
        }
        let v = w.exec(&data);
        match &v {
            Verdict::Ok(outcome) => {
                let class = outcome_class(outcome);
                if seen.insert(class.clone()) && {
                    // At most 32 kept per leading words: one check echoing many values must not
                    // fill the corpus.
                    let n = per_prefix.entry(class.chars().take(60).collect::<String>()).or_insert(0usize);
                    *n += 1;
                    *n <= 32
                } {
                    if corpus.len() < 2000 {
                        corpus.push(data);
                    } else {
                        let i = n_seeds + w.rng.below(corpus.len() - n_seeds);
                        corpus[i] = data;
                    }
                }
            }
            Verdict::Crash { .. } => {
                if w.report(&data, &v, "a mutated input", false) {
                    break;
                }
            }
        }
        if Instant::now() > next_status {
            next_status += Duration::from_secs(10);
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "fuzz[{name}]: {secs:.0} s, {} execs ({:.0}/s), corpus {}, outcomes {}, slowest {:.2} s, heap peak {} MiB",
                w.execs - execs_before,
                (w.execs - execs_before) as f64 / secs,
                corpus.len(),
                seen.len(),
                w.slowest.as_secs_f64(),
                crate::alloc::take_peak() >> 20
            );
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "fuzz[{name}]: done: {} execs in {secs:.0} s ({:.0}/s), corpus {}, outcomes {}, slowest input {:.2} s{}",
        w.execs - execs_before,
        (w.execs - execs_before) as f64 / secs.max(1e-9),
        corpus.len(),
        seen.len(),
        w.slowest.as_secs_f64(),
        if w.crashed { ", CRASHED" } else { ", no crash" }
    );
    if std::env::var_os("GANNET_FUZZ_DUMP_OUTCOMES").is_some() {
        let mut v: Vec<_> = seen.into_iter().collect();
        v.sort();
        for o in v {
            eprintln!("  outcome: {o}");
        }
    }
    if w.crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The supervisor's scratch folder for one worker (in memory when /dev/shm is there): the shared
/// input file and a `work` folder for the target's files. The supervisor removes it.
fn scratch_dir(target: &str) -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() && std::fs::metadata(base).is_ok_and(|m| !m.permissions().readonly()) { base.to_path_buf() } else { std::env::temp_dir() };
    base.join(format!("gannet-fuzz-{}-{target}", std::process::id()))
}
