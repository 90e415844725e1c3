//! The images to score: a file, or every image of a folder (optionally of its subfolders), and their
//! references paired by relative path. A distorted image without a reference of the same relative path is
//! paired with one of the same path and another image extension when there is exactly one (`a.png` with
//! `a.bmp`); whatever stays unpaired is listed, never silently dropped.
use iqa::image::IMAGE_EXTENSIONS;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image to score, with its reference when there is one.
#[derive(Debug, Clone)]
pub struct Pair {
    /// How the image is named in the output: its path relative to the DIST folder, or the path as given.
    pub name: String,
    pub dist: PathBuf,
    pub reference: Option<PathBuf>,
    /// The reference's name in the output.
    pub ref_name: Option<String>,
}

/// Pairs and the files that found no partner.
#[derive(Debug, Default)]
pub struct Pairing {
    pub pairs: Vec<Pair>,
    /// Distorted images without a reference (relative paths); not scored by FR metrics.
    pub dist_only: Vec<String>,
    /// References without a distorted image (relative paths).
    pub ref_only: Vec<String>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The images under `root` by relative path ('/'-separated), hidden files and folders skipped.
fn images_in(root: &Path, recursive: bool) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                if recursive {
                    stack.push(path);
                }
            } else if is_image(&path) {
                let relative = path.strip_prefix(root).expect("under root");
                let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
                found.insert(name.join("/"), path);
            }
        }
    }
    Ok(found)
}

/// The relative path without its extension.
fn stem_of(name: &str) -> &str {
    match name.rfind('.') {
        Some(dot) if !name[dot..].contains('/') => &name[..dot],
        _ => name,
    }
}

/// The pairs of `dist` (a file or folder) with `reference` (a file or folder, or none).
pub fn pair(dist: &Path, reference: Option<&Path>, recursive: bool) -> anyhow::Result<Pairing> {
    let usage = |m: String| anyhow::Error::new(crate::UsageError(m));
    if !dist.exists() {
        return Err(usage(format!("{} does not exist", dist.display())));
    }
    if let Some(r) = reference {
        if !r.exists() {
            return Err(usage(format!("{} does not exist", r.display())));
        }
        if r.is_dir() != dist.is_dir() {
            return Err(usage(format!("{} and {} must both be files or both be folders", dist.display(), r.display())));
        }
    }
    if !dist.is_dir() {
        let shown = |p: &Path| p.display().to_string();
        return Ok(Pairing {
            pairs: vec![Pair {
                name: shown(dist),
                dist: dist.to_path_buf(),
                reference: reference.map(Path::to_path_buf),
                ref_name: reference.map(shown),
            }],
            ..Default::default()
        });
    }
    let listing = |d: &Path| images_in(d, recursive).map_err(|e| anyhow::anyhow!("cannot list {}: {e}", d.display()));
    let dists = listing(dist)?;
    let Some(reference) = reference else {
        let pairs =
            dists.into_iter().map(|(name, path)| Pair { name, dist: path, reference: None, ref_name: None }).collect();
        return Ok(Pairing { pairs, ..Default::default() });
    };
    let mut refs = listing(reference)?;
    let mut by_stem: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in refs.keys() {
        by_stem.entry(stem_of(name).to_string()).or_default().push(name.clone());
    }
    let mut pairing = Pairing::default();
    let mut dist_only = Vec::new();
    for (name, path) in dists {
        if let Some(r) = refs.remove(&name) {
            pairing.pairs.push(Pair { ref_name: Some(name.clone()), name, dist: path, reference: Some(r) });
        } else {
            dist_only.push((name, path));
        }
    }
    // Same path, another extension: only where exactly one reference is left with that stem.
    for (name, path) in dist_only {
        let candidates: Vec<&String> = by_stem
            .get(stem_of(&name))
            .map(|c| c.iter().filter(|n| refs.contains_key(*n)).collect())
            .unwrap_or_default();
        if let [only] = candidates[..] {
            let only = only.clone();
            let r = refs.remove(&only).expect("still unpaired");
            pairing.pairs.push(Pair { name, dist: path, reference: Some(r), ref_name: Some(only) });
        } else {
            pairing.dist_only.push(name);
        }
    }
    pairing.pairs.sort_by(|a, b| a.name.cmp(&b.name));
    pairing.ref_only = refs.into_keys().collect();
    Ok(pairing)
}

/// Every image of `dists` (files, or the images of folders) paired with the one reference file `reference`
/// (`--ref`). Images of a single folder are named by their relative path, others by their path.
pub fn pair_with_one(dists: &[PathBuf], reference: &Path, recursive: bool) -> anyhow::Result<Pairing> {
    if !reference.is_file() {
        let why = if reference.exists() { "is not a file" } else { "does not exist" };
        return Err(anyhow::Error::new(crate::UsageError(format!("--ref {} {why}", reference.display()))));
    }
    let ref_name = reference.display().to_string();
    let mut pairs = Vec::new();
    for dist in dists {
        for found in pair(dist, None, recursive)?.pairs {
            let name = if dist.is_dir() && dists.len() > 1 {
                format!("{}/{}", dist.display(), found.name)
            } else {
                found.name
            };
            pairs.push(Pair {
                name,
                dist: found.dist,
                reference: Some(reference.to_path_buf()),
                ref_name: Some(ref_name.clone()),
            });
        }
    }
    Ok(Pairing { pairs, ..Default::default() })
}
