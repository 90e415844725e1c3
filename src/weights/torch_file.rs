//! `torch.save` files: the zip format (PyTorch >= 1.6) and the legacy format (a sequence of pickles followed by
//! the raw storages), read with the restricted unpickler of [`super::pickle`] and turned into CPU tensors.
//!
//! Errors are plain messages; [`super::load_state_dict`] prefixes the path.
use super::pickle::{self, Object, Pickle, StorageType, TensorSpec, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use tch::{Device, Kind, Tensor};

type Res<T> = std::result::Result<T, String>;

/// The legacy format's first pickle: torch/serialization.py `MAGIC_NUMBER`.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The legacy format's second pickle: `PROTOCOL_VERSION`.
const LEGACY_PROTOCOL: i128 = 1001;
/// Deeper nesting than this is not a state dict (and would only come from a crafted file).
const MAX_DEPTH: usize = 32;

/// Reads a `torch.save` file of either format.
pub(crate) fn read(path: &Path) -> Res<Vec<(String, Tensor)>> {
    let mut head = [0u8; 512];
    let n = {
        let mut f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        read_up_to(&mut f, &mut head).map_err(|e| format!("cannot read: {e}"))?
    };
    let head = &head[..n];
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return read_zip(path);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Err("this is the tar-based torch.save format of PyTorch < 0.1.10, which is not supported".into());
    }
    let data = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    read_legacy(&data)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A storage as a persistent id names it.
struct StorageId {
    kind: StorageType,
    key: String,
    /// Elements, as the persistent id declares them.
    numel: i64,
    /// Legacy storage views: (view key, offset in elements, size in elements) into the storage `key`.
    view: Option<(String, i64, i64)>,
}

fn storage_id(pk: &Pickle, pid: &Value, legacy: bool) -> Res<StorageId> {
    let items = pk.items(pid).ok_or("persistent id is not a tuple")?;
    match items.first() {
        Some(Value::Str(s)) if &**s == "storage" => {}
        Some(Value::Str(s)) if &**s == "module" => {
            return Err("the file pickles a whole module (source code), not a state dict".into())
        }
        _ => return Err("persistent id is not a storage reference".into()),
    }
    let want = if legacy { 6 } else { 5 };
    if items.len() != want {
        return Err(format!("storage reference has {} fields, expected {want}", items.len()));
    }
    let kind = match &items[1] {
        Value::Global(pickle::Global::Storage(k)) => *k,
        _ => return Err("storage reference without a storage type".into()),
    };
    let key = match &items[2] {
        Value::Str(s) => s.to_string(),
        _ => return Err("storage key is not a string".into()),
    };
    let numel = match &items[4] {
        Value::Int(n) if *n >= 0 && *n <= i64::MAX as i128 => *n as i64,
        _ => return Err("storage size is not a non-negative integer".into()),
    };
    let view = if legacy {
        match &items[5] {
            Value::None => None,
            v => {
                let t = pk.items(v).ok_or("storage view is not a tuple")?;
                match t {
                    [Value::Str(k), Value::Int(off), Value::Int(sz)] => {
                        let off = i64::try_from(*off).map_err(|_| "storage view offset out of range")?;
                        let sz = i64::try_from(*sz).map_err(|_| "storage view size out of range")?;
                        Some((k.to_string(), off, sz))
                    }
                    _ => return Err("malformed storage view".into()),
                }
            }
        }
    } else {
        None
    };
    Ok(StorageId { kind, key, numel, view })
}

/// The tensors of a pickle, flattened: nested dicts (and lists/tuples, by index) give "."-joined keys; values
/// that are not tensors (ints, strings, None) are skipped. A file that is one bare tensor (CLIP-IQA+'s learned
/// prompts) gives it under the key "".
fn flatten(pk: &Pickle) -> Res<Vec<(String, usize)>> {
    fn walk(pk: &Pickle, v: &Value, prefix: &str, depth: usize, out: &mut Vec<(String, usize)>) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        let Value::Ref(i) = v else { return Ok(()) };
        match pk.heap.get(*i) {
            Some(Object::Tensor(_)) => {
                out.push((prefix.to_string(), *i));
            }
            Some(Object::Dict(pairs)) => {
                for (k, v) in pairs {
                    let key = match k {
                        Value::Str(s) => s.to_string(),
                        Value::Int(n) => n.to_string(),
                        Value::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
                        _ => return Err("a dict key is neither a string nor an integer".into()),
                    };
                    walk(pk, v, &join(&key), depth + 1, out)?;
                }
            }
            Some(Object::List(items)) | Some(Object::Tuple(items)) => {
                for (n, v) in items.iter().enumerate() {
                    walk(pk, v, &join(&n.to_string()), depth + 1, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(pk, &pk.root, "", 0, &mut out)?;
    if out.is_empty() {
        return Err("no tensors in the file".into());
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &out {
        if !seen.insert(k.as_str()) {
            return Err(format!("key '{k}' occurs twice after flattening"));
        }
    }
    Ok(out)
}

/// A storage's data as a 1-D CPU tensor of its element type.
fn storage_tensor(bytes: &[u8], kind: StorageType, numel: i64, swap: bool) -> Res<Tensor> {
    let need = (numel as u128) * kind.element_size() as u128;
    if bytes.len() as u128 != need {
        return Err(format!("storage holds {} bytes, {need} expected", bytes.len()));
    }
    let t = if swap && kind.swap_unit() > 1 {
        let mut b = bytes.to_vec();
        for chunk in b.chunks_exact_mut(kind.swap_unit()) {
            chunk.reverse();
        }
        Tensor::f_from_data_size(&b, &[numel], kind.kind())
    } else {
        Tensor::f_from_data_size(bytes, &[numel], kind.kind())
    };
    t.map_err(|e| format!("libtorch: {}", e.to_string().lines().next().unwrap_or("")))
}

/// Applies a tensor's view (offset, size, stride) to its storage, checking that it stays inside, and returns a
/// compact contiguous copy (so that no tensor keeps a larger shared storage alive).
fn view(storage: &Tensor, storage_numel: i64, base: i64, spec: &TensorSpec, kind: Kind) -> Res<Tensor> {
    let TensorSpec { offset, size, stride, .. } = spec;
    if size.len() != stride.len() {
        return Err(format!("tensor size {size:?} and stride {stride:?} differ in length"));
    }
    if *offset < 0 || size.iter().any(|&s| s < 0) || stride.iter().any(|&s| s < 0) {
        return Err(format!("negative tensor offset, size or stride ({offset}, {size:?}, {stride:?})"));
    }
    let numel = size.iter().try_fold(1i64, |a, &s| a.checked_mul(s)).ok_or("tensor size overflows")?;
    let start = base.checked_add(*offset).ok_or("tensor offset overflows")?;
    // Last element's index (one past, for empty tensors: the offset itself must lie inside).
    let end = if numel == 0 {
        start
    } else {
        size.iter()
            .zip(stride)
            .try_fold(start, |a, (&n, &s)| (n - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
            .and_then(|last| last.checked_add(1))
            .ok_or("tensor extent overflows")?
    };
    if end > storage_numel {
        return Err(format!(
            "tensor of size {size:?}, stride {stride:?}, offset {offset} reaches element {end} of a storage of \
             {storage_numel}"
        ));
    }
    let tch_err = |e: tch::TchError| format!("libtorch: {}", e.to_string().lines().next().unwrap_or(""));
    let v = storage.f_as_strided(size.as_slice(), stride.as_slice(), start).map_err(tch_err)?;
    let mut out = Tensor::f_empty(size.as_slice(), (kind, Device::Cpu)).map_err(tch_err)?;
    out.f_copy_(&v).map_err(tch_err)?;
    Ok(out)
}

fn main_pickle(data: &[u8]) -> Res<Pickle> {
    let (pk, used) = pickle::parse(data)?;
    if used != data.len() {
        return Err(format!("{} unexpected bytes after the pickle", data.len() - used));
    }
    Ok(pk)
}

fn tensor_spec(pk: &Pickle, idx: usize) -> Res<&TensorSpec> {
    match pk.heap.get(idx) {
        Some(Object::Tensor(t)) => Ok(t),
        _ => Err("internal: not a tensor".into()),
    }
}

fn persistent<'a>(pk: &'a Pickle, spec: &TensorSpec) -> Res<&'a Value> {
    match pk.heap.get(spec.storage) {
        Some(Object::Persistent(pid)) => Ok(pid),
        _ => Err("internal: tensor storage is not a persistent id".into()),
    }
}

fn read_zip(path: &Path) -> Res<Vec<(String, Tensor)>> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| format!("corrupt zip archive: {e}"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .filter(|n| n.as_str() == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .ok_or_else(|| {
            if names.iter().any(|n| n.ends_with("constants.pkl") || n.contains("/code/")) {
                "this is a TorchScript archive (torch.jit.save), not a torch.save state dict".to_string()
            } else {
                "zip archive without data.pkl: not a torch.save file".to_string()
            }
        })?
        .clone();
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    let read_entry = |zip: &mut zip::ZipArchive<BufReader<File>>, name: &str, limit: u64| -> Res<Vec<u8>> {
        let mut e = zip.by_name(name).map_err(|e| format!("zip entry {name}: {e}"))?;
        let mut buf = Vec::with_capacity(e.size().min(limit).min(file_len) as usize);
        (&mut e).take(limit).read_to_end(&mut buf).map_err(|err| format!("zip entry {name}: {err}"))?;
        Ok(buf)
    };
    let swap = match names.iter().any(|n| *n == format!("{prefix}byteorder")) {
        true => {
            let b = read_entry(&mut zip, &format!("{prefix}byteorder"), 16)?;
            match b.trim_ascii() {
                b"little" => cfg!(target_endian = "big"),
                b"big" => cfg!(target_endian = "little"),
                other => return Err(format!("unknown byteorder {:?}", String::from_utf8_lossy(other))),
            }
        }
        false => cfg!(target_endian = "big"),
    };
    let data = read_entry(&mut zip, &pkl, 1 << 30)?;
    let pk = main_pickle(&data)?;
    let keys = flatten(&pk)?;
    let mut storages: HashMap<String, (Tensor, i64, StorageType)> = HashMap::new();
    let mut out = Vec::with_capacity(keys.len());
    for (name, idx) in keys {
        let spec = tensor_spec(&pk, idx)?;
        let sid = storage_id(&pk, persistent(&pk, spec)?, false)?;
        if !storages.contains_key(&sid.key) {
            let nbytes = (sid.numel as u128) * sid.kind.element_size() as u128;
            let record = format!("{prefix}data/{}", sid.key);
            if !names.contains(&record) {
                return Err(format!("storage record {record} is missing"));
            }
            let limit = u64::try_from(nbytes).map_err(|_| "storage too large")?;
            let mut bytes = read_entry(&mut zip, &record, limit)?;
            if (bytes.len() as u128) < nbytes {
                return Err(format!("storage record {record} holds {} bytes, {nbytes} expected", bytes.len()));
            }
            bytes.truncate(nbytes as usize);
            let t = storage_tensor(&bytes, sid.kind, sid.numel, swap)?;
            storages.insert(sid.key.clone(), (t, sid.numel, sid.kind));
        }
        let (storage, numel, kind) = &storages[&sid.key];
        if *kind != sid.kind {
            return Err(format!("storage {} is referenced with two types", sid.key));
        }
        let t = view(storage, *numel, 0, spec, kind.kind()).map_err(|e| format!("tensor '{name}': {e}"))?;
        out.push((name, t));
    }
    Ok(out)
}

fn read_legacy(data: &[u8]) -> Res<Vec<(String, Tensor)>> {
    let mut pos = 0usize;
    let mut next = |what: &str| -> Res<Pickle> {
        let (pk, used) = pickle::parse(&data[pos..]).map_err(|e| format!("{what}: {e}"))?;
        pos += used;
        Ok(pk)
    };
    // Protocol 2+ pickles start with PROTO (0x80); protocol 1 (which torch.save can write) has no marker.
    let magic = next("legacy header").map_err(|e| {
        format!(
            "not a PyTorch file: neither a zip archive nor a torch.save pickle (first byte 0x{:02x}: {e})",
            data.first().copied().unwrap_or(0)
        )
    })?;
    if !matches!(magic.root, Value::Int(LEGACY_MAGIC)) {
        return Err("not a PyTorch file: the legacy format's magic number is missing".into());
    }
    let proto = next("legacy header")?;
    match proto.root {
        Value::Int(LEGACY_PROTOCOL) => {}
        Value::Int(v) => return Err(format!("unsupported legacy protocol version {v}")),
        _ => return Err("legacy header: protocol version is not an integer".into()),
    }
    let sys_info = next("legacy header")?;
    let little_endian = match sys_info.get(&sys_info.root) {
        Some(Object::Dict(pairs)) => pairs
            .iter()
            .find_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Bool(b)) if &**k == "little_endian" => Some(*b),
                _ => None,
            })
            .unwrap_or(true),
        _ => return Err("legacy header: system info is not a dict".into()),
    };
    let swap = little_endian != cfg!(target_endian = "little");
    let pk = next("state dict pickle")?;
    let order = next("storage key list")?;
    let keys = flatten(&pk)?;

    // Every storage the pickle names (torch writes each one it referenced): key -> (type, elements).
    let mut roots: HashMap<String, (StorageType, i64)> = HashMap::new();
    for obj in &pk.heap {
        if let Object::Persistent(pid) = obj {
            let sid = storage_id(&pk, pid, true)?;
            match roots.get(&sid.key) {
                Some((k, n)) if *k != sid.kind || *n != sid.numel => {
                    return Err(format!("storage {} is declared twice with different types or sizes", sid.key))
                }
                _ => {
                    roots.insert(sid.key.clone(), (sid.kind, sid.numel));
                }
            }
        }
    }
    // Each tensor's storage: its root key and the element range it may use (a legacy storage view narrows it).
    let mut tensor_storage = Vec::with_capacity(keys.len());
    for (name, idx) in &keys {
        let spec = tensor_spec(&pk, *idx)?;
        let sid = storage_id(&pk, persistent(&pk, spec)?, true)?;
        let (base, limit) = match &sid.view {
            Some((_, off, size)) => {
                if *off < 0 || *size < 0 || off.checked_add(*size).is_none_or(|e| e > sid.numel) {
                    return Err(format!("tensor '{name}': storage view outside its storage"));
                }
                (*off, *off + *size)
            }
            None => (0, sid.numel),
        };
        tensor_storage.push((sid.key, base, limit));
    }

    // The storages follow, in the order of the key list: each an 8-byte element count, then the raw data.
    let order = order.items(&order.root).ok_or("storage key list is not a list")?.to_vec();
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    for key in order.iter() {
        let key = match key {
            Value::Str(s) => s.to_string(),
            _ => return Err("storage key list holds a non-string".into()),
        };
        let Some(&(kind, numel)) = roots.get(&key) else {
            return Err(format!("storage {key} is listed but the pickle never names it, so its type is unknown"));
        };
        let header = data.get(pos..pos + 8).ok_or_else(|| format!("truncated: storage {key} is missing"))?;
        let mut h: [u8; 8] = header.try_into().map_err(|_| "truncated")?;
        if swap {
            h.reverse();
        }
        let n = i64::from_le_bytes(h);
        if n != numel {
            return Err(format!("storage {key} holds {n} elements, the state dict says {numel}"));
        }
        pos += 8;
        let nbytes = usize::try_from(numel as u128 * kind.element_size() as u128)
            .map_err(|_| format!("storage {key} too large"))?;
        let bytes = data
            .get(pos..)
            .and_then(|d| d.get(..nbytes))
            .ok_or_else(|| format!("truncated: storage {key} needs {nbytes} bytes, {} left", data.len() - pos))?;
        pos += nbytes;
        storages.insert(key, storage_tensor(bytes, kind, numel, swap)?);
    }
    if pos != data.len() {
        return Err(format!("{} unexpected bytes after the last storage", data.len() - pos));
    }

    let mut out = Vec::with_capacity(keys.len());
    for ((name, idx), (key, base, limit)) in keys.into_iter().zip(tensor_storage) {
        let spec = tensor_spec(&pk, idx)?;
        let storage = storages.get(&key).ok_or_else(|| format!("tensor '{name}': storage {key} is not in the file"))?;
        let kind = roots[&key].0;
        let t = view(storage, limit, base, spec, kind.kind()).map_err(|e| format!("tensor '{name}': {e}"))?;
        out.push((name, t));
    }
    Ok(out)
}
