//! Every committed fuzz input through the fuzz targets' entry points (iqa::fuzzing::run), with plain
//! `cargo test`: the seeds of fuzz/corpus/TARGET, and in fuzz/regressions/TARGET the inputs that once crashed a
//! target (each fixed since). Each is an error or a success, never a panic; every seed parses.
//!
//! Then a bounded fuzzing run on the stable toolchain: mutations of the seeds (libFuzzer's kinds: bit flips,
//! boundary values, cuts, repeats, splices) through every target for IQA_FUZZ_SECONDS (default 3) each. It has
//! no coverage guidance, which `make fuzz` (cargo-fuzz, nightly) adds for the long runs.
mod common;
use common::root;
use iqa::fuzzing::{run, TARGETS};
use std::path::Path;
use std::time::{Duration, Instant};

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_seed_and_every_former_crash_is_handled() {
    let mut total = 0;
    for target in TARGETS {
        let seeds = files(&root().join("fuzz/corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target} has seeds");
        let regressions = files(&root().join("fuzz/regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            match outcome {
                Ok(result) => println!("{target} {}: {:?}", path.display(), result.map_err(|e| e.kind)),
                Err(_) => panic!("{target}: {} panicked", path.display()),
            }
            total += 1;
        }
    }
    println!("{total} inputs");
}

/// The seeds are valid inputs: each parses (the fuzzers start from inputs that reach deep into the parsers).
#[test]
fn seeds_parse() {
    for target in TARGETS {
        for path in files(&root().join("fuzz/corpus").join(target)) {
            let data = std::fs::read(&path).unwrap();
            if let Err(e) = run(target, &data) {
                panic!("{target} seed {}: {e}", path.display());
            }
        }
    }
}

/// The fuzz crate builds one binary per target this list names, and no other.
#[test]
fn every_target_has_a_fuzz_binary_and_seeds() {
    let mut binaries: Vec<String> = files(&root().join("fuzz/fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    binaries.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    targets.sort();
    assert_eq!(binaries, targets);
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    for target in TARGETS {
        assert!(manifest.contains(&format!("name = \"{target}\"")), "fuzz/Cargo.toml builds {target}");
    }
}

/// xorshift64: the same mutations every run, so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations of `input`; `other` is a second seed to splice from.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    const BOUNDARIES: [u64; 8] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, u64::MAX];
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        let at = rng.below(len);
        match rng.below(7) {
            0 if len > 0 => input[at] ^= 1 << rng.below(8),
            1 if len > 0 => input[at] = rng.next() as u8,
            2 if len > 0 => {
                let width = [1, 2, 4, 8][rng.below(4)].min(len - at);
                let value = BOUNDARIES[rng.below(BOUNDARIES.len())].to_le_bytes();
                input[at..at + width].copy_from_slice(&value[..width]);
            }
            3 => input.truncate(at),
            4 if len > 0 => {
                let n = 1 + rng.below((len - at).min(64));
                let chunk = input[at..at + n].to_vec();
                input.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                input.splice(at..(at + n).min(len), other[from..from + n].iter().copied());
            }
            _ => input.insert(at.min(len), rng.next() as u8),
        }
    }
}

#[test]
fn mutated_seeds_for_a_bounded_time() {
    let seconds: f64 = std::env::var("IQA_FUZZ_SECONDS").map_or(3.0, |v| v.parse().expect("IQA_FUZZ_SECONDS"));
    let failures = root().join("target/fuzz-failures");
    for (t, target) in TARGETS.iter().enumerate() {
        let seeds: Vec<Vec<u8>> =
            files(&root().join("fuzz/corpus").join(target)).iter().map(|p| std::fs::read(p).unwrap()).collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
        let (start, mut runs) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            let mut input = seeds[rng.below(seeds.len())].clone();
            let other = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, &mut input, other);
            if let Err(panic) = std::panic::catch_unwind(|| run(target, &input)) {
                let text =
                    panic.downcast_ref::<String>().cloned().or(panic.downcast_ref::<&str>().map(|s| s.to_string()));
                std::fs::create_dir_all(&failures).unwrap();
                let path = failures.join(format!("{target}-{runs}"));
                std::fs::write(&path, &input).unwrap();
                panic!("{target} panicked on run {runs}: {text:?}; the input is {}", path.display());
            }
            runs += 1;
        }
        println!("{target}: {runs} mutated inputs in {seconds} s, no panic");
    }
}
