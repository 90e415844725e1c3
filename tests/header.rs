//! include/iqa.h must be exactly what cbindgen generates from src/ffi today.
//! Regenerate after changing the C API with: IQA_UPDATE_HEADER=1 cargo test --test header
use std::path::Path;

fn generate() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let (major, minor, patch) =
        (env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"), env!("CARGO_PKG_VERSION_PATCH"));
    config.after_includes = Some(format!(
        "\n/* Version of the headers this program was compiled against (from Cargo.toml). */\n\
         #define IQA_VERSION_MAJOR {major}\n#define IQA_VERSION_MINOR {minor}\n#define IQA_VERSION_PATCH {patch}\n\
         #define IQA_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .with_src(root.join("src/ffi/types.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_matches_the_rust_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/iqa.h");
    let generated = generate();
    if std::env::var_os("IQA_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/iqa.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let mut diff = String::new();
        let (a, b): (Vec<_>, Vec<_>) = (committed.lines().collect(), generated.lines().collect());
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(i).copied(), b.get(i).copied());
            if x != y {
                diff += &format!(
                    "line {}:\n  committed: {}\n  generated: {}\n",
                    i + 1,
                    x.unwrap_or("<none>"),
                    y.unwrap_or("<none>")
                );
                if diff.len() > 3000 {
                    break;
                }
            }
        }
        panic!("include/iqa.h is out of date; run `IQA_UPDATE_HEADER=1 cargo test --test header`.\n{diff}");
    }
}
