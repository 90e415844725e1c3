//! Every committed fuzz input through the fuzz targets' entry points (iqa::fuzzing::run), with plain
//! `cargo test`: the seeds of fuzz/corpus/TARGET, and in fuzz/regressions/TARGET the inputs that once crashed a
//! target (each fixed since). Each is an error or a success, never a panic; a few seeds must parse.
mod common;
use common::root;
use iqa::fuzzing::{run, TARGETS};
use std::path::Path;

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
