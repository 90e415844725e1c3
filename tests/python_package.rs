//! The `iqa` Python package (python/): its pytest suite (python/tests) run with the project's Python against
//! the libiqa.so of the current cargo profile, checking scores through every input kind against pyiqa's
//! references (tests/data). IQA_PYTEST_FULL=1 runs the whole reference matrix (`make python-test-full`).
mod common;
use common::{libiqa, root, venv_python};
use std::process::Command;

#[test]
fn pytest_suite_passes() {
    let out = Command::new(venv_python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"])
        .current_dir(root())
        .env("IQA_LIBRARY", libiqa())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let text = format!(
        "pytest python/tests: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    println!("{text}");
}
