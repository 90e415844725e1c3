//! ABI discipline: the C ABI that include/iqa.h and libiqa.so present today is compared with abi/iqa.abi, the
//! committed record. Recorded per line: the exported `iqa_*` symbols, each function's prototype (parameter names
//! dropped), each struct's size and alignment and each field's type, offset and size (measured by a C program
//! compiled against the header), each enum's size and each enumerator's value, opaque types, other typedefs
//! and `#define`s (IQA_VERSION_* excepted). The soname of the built library must be libiqa.so.<IQA_ABI_VERSION>.
//!
//! - Removing or changing anything recorded without bumping IQA_ABI_VERSION (src/ffi/types.rs) fails.
//!   Growing a struct whose first field is `uint32_t struct_size` counts as an addition: the library must
//!   then keep accepting the older struct_size.
//! - Additions fail until recorded: `make abi` (IQA_UPDATE_ABI=1 cargo test --release --test abi) rewrites the
//!   record; it refuses to record a break unless IQA_ABI_VERSION was bumped. After a bump, `make abi` records
//!   the new ABI as the new baseline.
mod common;
use common::{libiqa, root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const RECORD: &str = "abi/iqa.abi";
const UPDATE: &str = "run `make abi` (IQA_UPDATE_ABI=1 cargo test --release --test abi)";

/// One record: key -> value (e.g. "field IqaImage.stride" -> "size_t @16 size 8").
type Abi = BTreeMap<String, String>;

/// Declarations of the header, parsed from cbindgen's regular output.
#[derive(Default)]
struct Header {
    abi_version: u32,
    /// struct (or union) name -> fields as (name, type)
    structs: Vec<(String, Vec<(String, String)>)>,
    /// enum name -> enumerator names
    enums: Vec<(String, Vec<String>)>,
    /// function name -> prototype without parameter names
    functions: BTreeMap<String, String>,
    other: Abi,
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "(").replace(" )", ")").replace(" ,", ",")
}

/// The identifier a declarator declares (`*name`, `name[3]`, `(*name)(int)`), and the type left without it.
fn split_declarator(decl: &str) -> (String, String) {
    let decl = normalize(decl);
    let ident = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.is_empty();
    if let Some(at) = decl.find("(*") {
        let name: String = decl[at + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        return (name.clone(), decl.replacen(&format!("(*{name})"), "(*)", 1));
    }
    let (head, array) = match decl.find('[') {
        Some(at) => (decl[..at].trim_end(), &decl[at..]),
        None => (decl.as_str(), ""),
    };
    let start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let (ty, name) = (head[..start].trim_end(), &head[start..]);
    if !ident(name) || ty.is_empty() || ["void", "const"].contains(&head) {
        return (String::new(), decl.clone()); // an unnamed parameter, `void`
    }
    (name.to_string(), format!("{ty}{array}"))
}

/// Top-level declarations of the header (comments and preprocessor lines removed), each ending in `;`.
fn declarations(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut code = code.as_str().to_owned();
    while let Some(a) = code.find("/*") {
        let end = code[a..].find("*/").map_or(code.len(), |b| a + b + 2);
        code.replace_range(a..end, " ");
    }
    let code = code.replace("extern \"C\" {", "").replace('}', " } ").replace('{', " { ");
    let mut out = Vec::new();
    let (mut depth, mut current) = (0i32, String::new());
    for token in code.split_inclusive([';', '{', '}']) {
        depth += token.matches('{').count() as i32 - token.matches('}').count() as i32;
        if depth < 0 {
            // the closing brace of `extern "C" {`
            (depth, current) = (0, String::new());
            continue;
        }
        current.push_str(token);
        if depth <= 0 && token.ends_with(';') {
            out.push(normalize(&current));
            current.clear();
            depth = 0;
        }
    }
    out
}

fn parse_header(text: &str) -> Header {
    let mut h = Header::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("#define") {
            let (name, value) = (words.next().unwrap_or(""), words.collect::<Vec<_>>().join(" "));
            match name {
                "IQA_ABI_VERSION" => h.abi_version = value.parse().expect("IQA_ABI_VERSION is a number"),
                "IQA_H" => {}
                n if n.starts_with("IQA_VERSION_") => {}
                n => {
                    h.other.insert(format!("define {n}"), value);
                }
            }
        }
    }
    assert!(h.abi_version > 0, "include/iqa.h defines no IQA_ABI_VERSION");
    for decl in declarations(text) {
        let body = |d: &str| d[d.find('{').unwrap() + 1..d.rfind('}').unwrap()].to_string();
        if let Some(rest) = decl.strip_prefix("typedef enum ") {
            let name = rest.split_whitespace().next().unwrap().to_string();
            let variants = body(&decl)
                .split(',')
                .map(|v| v.split('=').next().unwrap().trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            h.enums.push((name, variants));
        } else if decl.starts_with("typedef struct ") || decl.starts_with("typedef union ") {
            let name = decl.split_whitespace().nth(2).unwrap().to_string();
            if !decl.contains('{') {
                h.other.insert(format!("opaque {name}"), String::new());
                continue;
            }
            let fields = body(&decl).split(';').filter(|f| !f.trim().is_empty()).map(split_declarator).collect();
            h.structs.push((name, fields));
        } else if decl.starts_with("typedef ") {
            h.other.insert(format!("typedef {}", split_declarator(decl.trim_end_matches(';')).0), decl.clone());
        } else if let Some(open) = decl.find('(') {
            let (name, ret) = split_declarator(&decl[..open]);
            let params = decl[open + 1..decl.rfind(')').unwrap()]
                .split(',')
                .map(|p| split_declarator(p).1)
                .collect::<Vec<_>>()
                .join(", ");
            h.functions.insert(name, format!("{ret} ({params})"));
        } else {
            panic!("include/iqa.h: a declaration this test does not know how to record: {decl}");
        }
    }
    h
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Sizes, offsets and values as a C compiler lays them out from the header, plus the loaded library's ABI.
fn measured_layout(h: &Header, dir: &Path) -> Abi {
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"iqa.h\"\nint main(void) {\n");
    for (name, fields) in &h.structs {
        c += &format!("printf(\"struct {name}|size %zu align %zu\\n\", sizeof({name}), _Alignof({name}));\n");
        for (field, ty) in fields {
            c += &format!(
                "printf(\"field {name}.{field}|{ty} @%zu size %zu\\n\", offsetof({name}, {field}), \
                 sizeof((({name} *)0)->{field}));\n"
            );
        }
    }
    for (name, variants) in &h.enums {
        c += &format!("printf(\"enum {name}|size %zu\\n\", sizeof({name}));\n");
        for v in variants {
            c += &format!("printf(\"value {name}.{v}|%lld\\n\", (long long){v});\n");
        }
    }
    c += "printf(\"loaded|%u\\n\", iqa_abi_version());\nreturn 0;\n}\n";
    let (src, exe) = (dir.join("layout.c"), dir.join("layout"));
    std::fs::write(&src, c).unwrap();
    let lib = libiqa();
    let lib_dir = lib.parent().unwrap();
    run(
        "cc layout.c",
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Werror"])
            .arg(format!("-I{}", root().join("include").display()))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib_dir.display()))
            .arg("-liqa")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display())),
    );
    run("layout", &mut Command::new(&exe))
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('|').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The ABI of include/iqa.h and the built libiqa.so, as recorded in abi/iqa.abi.
fn current_abi(dir: &Path) -> (u32, Abi) {
    let header = std::fs::read_to_string(root().join("include/iqa.h")).unwrap();
    let h = parse_header(&header);
    let mut abi = h.other.clone();
    let mut layout = measured_layout(&h, dir);
    let loaded: u32 = layout.remove("loaded").unwrap().parse().unwrap();
    assert_eq!(loaded, h.abi_version, "iqa_abi_version() of the built library vs the header's IQA_ABI_VERSION");
    abi.extend(layout);
    for (name, proto) in &h.functions {
        abi.insert(format!("function {name}"), proto.clone());
    }

    let lib = libiqa();
    let readelf = run("readelf", Command::new("readelf").arg("-d").arg(&lib));
    let soname = readelf.lines().find_map(|l| l.split("Library soname: [").nth(1)).map(|s| s.trim_end_matches(']'));
    assert_eq!(soname, Some(format!("libiqa.so.{}", h.abi_version).as_str()), "soname of {}", lib.display());

    let nm = run("nm", Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let exported: Vec<&str> =
        nm.lines().filter_map(|l| l.split_whitespace().nth(2)).filter(|s| s.starts_with("iqa_")).collect();
    let declared: Vec<&str> = h.functions.keys().map(String::as_str).collect();
    let undeclared: Vec<_> = exported.iter().filter(|s| !h.functions.contains_key(**s)).collect();
    let missing: Vec<_> = declared.iter().filter(|s| !exported.contains(s)).collect();
    assert!(undeclared.is_empty(), "libiqa exports iqa_ symbols that include/iqa.h does not declare: {undeclared:?}");
    assert!(missing.is_empty(), "include/iqa.h declares functions libiqa does not export: {missing:?}");
    for s in exported {
        abi.insert(format!("symbol {s}"), String::new());
    }
    (h.abi_version, abi)
}

fn parse_record(text: &str) -> (u32, Abi) {
    let mut version = 0;
    let mut abi = Abi::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (key, value) = line.split_once(": ").unwrap_or((line, ""));
        if let Some(v) = key.strip_prefix("abi_version ") {
            version = v.parse().expect("abi_version is a number");
        } else {
            abi.insert(key.to_string(), value.to_string());
        }
    }
    assert!(version > 0, "{RECORD} has no `abi_version N` line");
    (version, abi)
}

fn format_record(version: u32, abi: &Abi) -> String {
    let mut out = format!(
        "# The C ABI of libiqa (include/iqa.h + libiqa.so), checked by tests/abi.rs. Do not edit: {UPDATE}\n\
         # after adding to the C API; removing or changing a line needs an IQA_ABI_VERSION bump first.\n\
         abi_version {version}\n"
    );
    for (k, v) in abi {
        out += &if v.is_empty() { format!("{k}\n") } else { format!("{k}: {v}\n") };
    }
    out
}

/// `struct_size`-first structs may grow; their size and alignment line is "size N align A".
fn extensible(abi: &Abi, name: &str) -> Option<usize> {
    let first = abi.get(&format!("field {name}.struct_size"))?;
    (first.starts_with("uint32_t @0 ")).then(|| {
        let line = abi.get(&format!("struct {name}")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    })
}

/// What `now` removed or changed from `then` (breaks) and what it added.
fn compare(then: &Abi, now: &Abi) -> (Vec<String>, Vec<String>) {
    let (mut breaks, mut additions) = (Vec::new(), Vec::new());
    for (key, old) in then {
        match now.get(key) {
            None => breaks.push(format!("removed: {key}")),
            Some(new) if new == old => {}
            Some(new) => {
                let grows = key.strip_prefix("struct ").and_then(|s| extensible(then, s)).is_some_and(|old_size| {
                    let size = |v: &str| v.split_whitespace().nth(1).and_then(|n| n.parse::<usize>().ok());
                    size(new).is_some_and(|n| n > old_size)
                        && old.split(" align ").nth(1) == new.split(" align ").nth(1)
                });
                let line = format!("{key}: {old} -> {new}");
                if grows {
                    additions.push(line)
                } else {
                    breaks.push(line)
                }
            }
        }
    }
    for (key, new) in now.iter().filter(|(k, _)| !then.contains_key(*k)) {
        let line = format!("added: {key}{}", if new.is_empty() { String::new() } else { format!(": {new}") });
        // A new field of a struct that existed: only past the old end of a struct_size-first struct.
        let field_of_old_struct = key
            .strip_prefix("field ")
            .and_then(|f| f.split_once('.'))
            .map(|(s, _)| s)
            .filter(|s| then.contains_key(&format!("struct {s}")));
        match field_of_old_struct {
            None => additions.push(line),
            Some(s) => {
                let offset: usize =
                    new.split(" @").nth(1).and_then(|o| o.split_whitespace().next()?.parse().ok()).unwrap();
                match extensible(then, s) {
                    Some(old_size) if offset >= old_size => additions.push(line),
                    _ => breaks.push(format!("{line} (inside the old layout of {s})")),
                }
            }
        }
    }
    (breaks, additions)
}

#[test]
fn the_c_abi_matches_the_committed_record() {
    let dir = std::env::temp_dir().join(format!("iqa_abi_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (version, now) = current_abi(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let path = root().join(RECORD);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let update = std::env::var_os("IQA_UPDATE_ABI").is_some();
    if text.is_empty() && update {
        std::fs::write(&path, format_record(version, &now)).unwrap();
        return;
    }
    assert!(!text.is_empty(), "{RECORD} is missing: {UPDATE}");
    let (recorded, then) = parse_record(&text);
    let (breaks, additions) = compare(&then, &now);
    println!(
        "ABI {version} ({RECORD}: ABI {recorded}): {} entries, {} additions, {} breaks",
        now.len(),
        additions.len(),
        breaks.len()
    );
    assert!(version >= recorded, "IQA_ABI_VERSION went back from {recorded} to {version}");
    if version == recorded && !breaks.is_empty() {
        panic!(
            "C ABI break without an IQA_ABI_VERSION bump ({} {}):\n  {}\nRestore them, or bump IQA_ABI_VERSION in \
             src/ffi/types.rs, `make header`, then {UPDATE}.",
            breaks.len(),
            if breaks.len() == 1 { "change" } else { "changes" },
            breaks.join("\n  ")
        );
    }
    if update {
        std::fs::write(&path, format_record(version, &now)).unwrap();
        return;
    }
    assert!(version == recorded, "IQA_ABI_VERSION is now {version}, {RECORD} records {recorded}: {UPDATE}");
    assert!(
        additions.is_empty(),
        "C API additions not yet recorded in {RECORD}:\n  {}\n{UPDATE}",
        additions.join("\n  ")
    );
    // The record must be exactly what `make abi` writes (no hand edits, no stale lines).
    assert_eq!(text, format_record(version, &now), "{RECORD} differs from what `make abi` would write: {UPDATE}");
}

/// The comparison itself, on made-up records: what counts as a break and what as an addition.
#[test]
fn removals_and_layout_changes_are_breaks_and_growth_of_struct_size_structs_is_not() {
    let abi = |lines: &[&str]| parse_record(&format!("abi_version 1\n{}", lines.join("\n"))).1;
    let base = abi(&[
        "symbol iqa_a",
        "function iqa_a: int (const struct S *)",
        "struct S: size 16 align 8",
        "field S.struct_size: uint32_t @0 size 4",
        "field S.x: double @8 size 8",
        "struct T: size 8 align 4",
        "field T.w: uint32_t @0 size 4",
        "enum E: size 4",
        "value E.E_A: 0",
    ]);
    let with = |changes: &[(&str, Option<&str>)]| {
        let mut a = base.clone();
        for (k, v) in changes {
            match v {
                Some(v) => a.insert(k.to_string(), v.to_string()),
                None => a.remove(*k),
            };
        }
        compare(&base, &a)
    };
    assert_eq!(with(&[]), (vec![], vec![]));
    assert_eq!(with(&[("symbol iqa_b", Some(""))]).1, ["added: symbol iqa_b"]);
    assert_eq!(with(&[("symbol iqa_a", None)]).0, ["removed: symbol iqa_a"]);
    assert_eq!(with(&[("value E.E_A", Some("1"))]).0, ["value E.E_A: 0 -> 1"]);
    assert_eq!(with(&[("value E.E_B", Some("1"))]).1, ["added: value E.E_B: 1"]);
    assert_eq!(
        with(&[("function iqa_a", Some("int (struct S *)"))]).0,
        ["function iqa_a: int (const struct S *) -> int (struct S *)"]
    );
    // S starts with struct_size: it may grow, with new fields past its old end.
    let grown = with(&[("struct S", Some("size 24 align 8")), ("field S.y", Some("double @16 size 8"))]);
    assert_eq!(grown.0, Vec::<String>::new());
    assert_eq!(grown.1.len(), 2);
    assert_eq!(with(&[("struct S", Some("size 8 align 8"))]).0.len(), 1, "shrinking is a break");
    assert_eq!(with(&[("field S.x", Some("float @8 size 4"))]).0.len(), 1, "a field's type is part of the ABI");
    // T has no struct_size: any growth or new field is a break.
    let t = with(&[("struct T", Some("size 16 align 8")), ("field T.v", Some("double @8 size 8"))]);
    assert_eq!(t.0.len(), 2, "{t:?}");
    assert_eq!(with(&[("field S.z", Some("uint32_t @4 size 4"))]).0.len(), 1, "a field in S's old padding");
}

#[test]
fn header_declarations_parse_as_cbindgen_writes_them() {
    let h = parse_header(
        "#define IQA_ABI_VERSION 3\n#define IQA_MAX_PLANES 4\n#define IQA_VERSION_MAJOR 0\n\
         typedef enum IqaX {\n  // doc\n  IQA_X_A = 0,\n  IQA_X_B = 2,\n} IqaX;\n\
         typedef struct IqaOpaque IqaOpaque;\n\
         typedef struct IqaFrame {\n  uint32_t struct_size;\n  const uint8_t *planes[3];\n  \
         void (*free_fn)(void *user);\n} IqaFrame;\n\
         #ifdef __cplusplus\nextern \"C\" {\n#endif\n\
         uint32_t iqa_abi_version(void);\n\
         enum IqaStatus iqa_f(const struct IqaFrame *frame,\n                     double *out_scores);\n\
         #ifdef __cplusplus\n}\n#endif\n",
    );
    assert_eq!(h.abi_version, 3);
    assert_eq!(h.enums, [("IqaX".to_string(), vec!["IQA_X_A".to_string(), "IQA_X_B".to_string()])]);
    let fields: Vec<(String, String)> =
        [("struct_size", "uint32_t"), ("planes", "const uint8_t *[3]"), ("free_fn", "void (*)(void *user)")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(h.structs, [("IqaFrame".to_string(), fields)]);
    assert_eq!(h.functions["iqa_abi_version"], "uint32_t (void)");
    assert_eq!(h.functions["iqa_f"], "enum IqaStatus (const struct IqaFrame *, double *)");
    assert_eq!(h.other.keys().collect::<Vec<_>>(), ["define IQA_MAX_PLANES", "opaque IqaOpaque"]);
}
