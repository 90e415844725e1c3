//! The import rule of ARCHITECTURE.md: each top-level module of src/ uses only modules of lower layers, so
//! that there is no cycle. Read from every `crate::` path in the sources (tests included).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, top to bottom; a module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["ffi", "fuzzing"],
    &["video"],
    &["api"],
    &["registry"],
    &["catalogue"],
    &["metrics"],
    &["nn"],
    &["cache"],
    &["model"],
    &["weights", "image"],
    &["runtime", "tensor"],
    &["error"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::`, including `use crate::{a, b::c}` groups.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            for item in top_level_items(group) {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            used.insert(name);
        }
    }
    used
}

/// The comma-separated items of a `{...}` group (given without its opening brace), nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "bin" {
            continue; // the crate root declares every module; binaries use the public API only
        }
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&text) {
            if used != module {
                edges.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    let mut violations = Vec::new();
    for (module, uses) in &edges {
        let own = layer_of(module).unwrap_or_else(|| panic!("module '{module}' has no layer in LAYERS"));
        for used in uses {
            let theirs = layer_of(used).unwrap_or_else(|| panic!("'{module}' uses '{used}', which has no layer"));
            if theirs <= own {
                violations.push(format!("{module} (layer {own}) uses {used} (layer {theirs})"));
            }
        }
    }
    for (module, uses) in &edges {
        println!("{module} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(violations.is_empty(), "imports against the layering:\n{}", violations.join("\n"));
    // The check itself sees the imports it is about.
    assert!(edges["metrics"].contains("nn") && edges["api"].contains("registry") && edges["nn"].contains("cache"));
}

#[test]
fn group_imports_are_read() {
    let used = used_modules("use crate::{error::Result, model::{Mode, Model}};\nlet x = crate::runtime::init();");
    assert_eq!(used, ["error", "model", "runtime"].map(String::from).into());
}
