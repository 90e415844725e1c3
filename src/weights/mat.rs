//! A reader of MATLAB level-5 MAT-files (MATLAB's `-v6` and `-v7` formats) for the subset pyiqa's parameter files
//! use: numeric arrays of any class, cell arrays and structs (nested), and zlib-compressed elements. Object, char
//! and sparse arrays are listed as [`MatValue::Unsupported`]; complex arrays, v4 and v7.3 (HDF5) files are errors.
//!
//! Written here rather than taken from a crate: `matfile` reads no cell arrays (IL-NIQE's template is one), and
//! the crates that do (`matrw` 0.1, `matreader` 0.1, `matlab-mat` 0.1) are young, panic on malformed input and size
//! buffers from header fields. The bytes come from a user's folder or a cache, so [`read`] treats them as
//! untrusted: every length is checked against the bytes present before anything is allocated, decompressed
//! data is capped at [`MAX_DECOMPRESSED`], nesting at [`MAX_DEPTH`], and no input makes it panic.
use std::io::Read;

/// What a variable holds.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A real numeric array, values in MATLAB's column-major order converted to f64 (exact for every class but
    /// 64-bit integers beyond 2^53).
    Numeric { dims: Vec<usize>, single: bool, data: Vec<f64> },
    /// A cell array, items in column-major order.
    Cell { dims: Vec<usize>, items: Vec<MatValue> },
    /// A struct array: `fields` names in file order, `items` element by element (column-major), each element's
    /// fields in that order.
    Struct { dims: Vec<usize>, fields: Vec<String>, items: Vec<MatValue> },
    /// An object, char or sparse array (MATLAB's class number), not read.
    Unsupported { class: u8 },
}

/// Most bytes all compressed elements of one file may expand to (far above the 3.1 MB of the largest parameter
/// file iqa reads): a corrupt or hostile stream cannot make the reader allocate more.
pub const MAX_DECOMPRESSED: usize = 256 << 20;
/// Deepest nesting of cell arrays and structs.
pub const MAX_DEPTH: usize = 16;

const MI_INT8: u32 = 1;
const MI_UINT32: u32 = 6;
const MI_INT32: u32 = 5;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
}

/// The variables of a MAT-file, in file order: `(name, value)`. Errors say what is wrong and where (byte offset
/// within the file, or within a decompressed element).
pub fn read(bytes: &[u8]) -> Result<Vec<(String, MatValue)>, String> {
    if bytes.len() < 128 {
        return Err(format!("{} bytes: shorter than the 128-byte MAT-file header", bytes.len()));
    }
    let endian = match &bytes[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        _ => return Err("not a MATLAB level-5 MAT-file (no endian indicator at byte 126)".to_string()),
    };
    match endian.u16([bytes[124], bytes[125]]) {
        0x0100 => {}
        0x0200 => return Err("a MATLAB 7.3 (HDF5) MAT-file; save it with -v7 to have iqa read it".to_string()),
        v => return Err(format!("MAT-file version {v:#06x}; iqa reads version 0x0100 (MATLAB -v6/-v7)")),
    }
    let mut state = State { endian, decompressed: 0 };
    let mut vars = Vec::new();
    let mut top = Cursor { bytes, pos: 128 };
    while top.pos < bytes.len() {
        let element = top.element(endian)?;
        match element.kind {
            MI_COMPRESSED => {
                let inflated = state.inflate(element.data, element.offset)?;
                let mut inner = Cursor { bytes: &inflated, pos: 0 };
                while inner.pos < inflated.len() {
                    let e =
                        inner.element(endian).map_err(|m| format!("in the element at byte {}: {m}", element.offset))?;
                    if e.kind == MI_MATRIX {
                        vars.push(state.matrix(e.data, 0).map_err(|m| {
                            format!("in the compressed element at byte {}, offset {}: {m}", element.offset, e.offset)
                        })?);
                    }
                }
            }
            MI_MATRIX => {
                vars.push(state.matrix(element.data, 0).map_err(|m| format!("at byte {}: {m}", element.offset))?)
            }
            _ => {} // MATLAB writes nothing else at the top level; other elements carry no variable
        }
    }
    Ok(vars)
}

/// One data element: its type and its bytes.
struct Element<'a> {
    kind: u32,
    data: &'a [u8],
    offset: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            format!("{n} bytes needed at offset {}, {} left (truncated)", self.pos, self.bytes.len() - self.pos)
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Reads a tag and its data (the small format packs up to 4 bytes into the tag); moves past the padding to
    /// the next 8-byte boundary (none after compressed elements, and a file may end without it).
    fn element(&mut self, endian: Endian) -> Result<Element<'a>, String> {
        let offset = self.pos;
        let first = endian.u32(self.array()?);
        if first >> 16 != 0 {
            let (kind, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 {
                return Err(format!("small data element at offset {offset} claims {n} bytes (at most 4)"));
            }
            let data = &self.take(4)?[..n];
            return Ok(Element { kind, data, offset });
        }
        let n = endian.u32(self.array()?) as usize;
        let data = self.take(n)?;
        if first != MI_COMPRESSED {
            self.pos = self.pos.saturating_add((8 - n % 8) % 8).min(self.bytes.len());
        }
        Ok(Element { kind: first, data, offset })
    }
}

struct State {
    endian: Endian,
    decompressed: usize,
}

impl State {
    fn inflate(&mut self, data: &[u8], offset: usize) -> Result<Vec<u8>, String> {
        let room = MAX_DECOMPRESSED - self.decompressed;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(data)
            .take(room as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("the compressed element at byte {offset} does not inflate: {e}"))?;
        if out.len() > room {
            return Err(format!("compressed elements expand past {} MiB", MAX_DECOMPRESSED >> 20));
        }
        self.decompressed += out.len();
        Ok(out)
    }

    /// The contents of an miMATRIX element: flags, dimensions, name, then the class's data.
    fn matrix(&mut self, data: &[u8], depth: usize) -> Result<(String, MatValue), String> {
        if depth > MAX_DEPTH {
            return Err(format!("cell arrays or structs nested deeper than {MAX_DEPTH}"));
        }
        if data.is_empty() {
            // MATLAB writes an empty cell item as a matrix element without contents.
            return Ok((String::new(), MatValue::Numeric { dims: vec![0, 0], single: false, data: Vec::new() }));
        }
        let endian = self.endian;
        let mut c = Cursor { bytes: data, pos: 0 };
        let flags = c.element(endian)?;
        if flags.kind != MI_UINT32 || flags.data.len() != 8 {
            return Err(format!(
                "array flags are type {} of {} bytes (expected 8 bytes of type 6)",
                flags.kind,
                flags.data.len()
            ));
        }
        let flag_word = endian.u32(flags.data[..4].try_into().expect("4 bytes"));
        let (class, complex) = ((flag_word & 0xff) as u8, flag_word & 0x800 != 0);
        let dims_element = c.element(endian)?;
        if dims_element.kind != MI_INT32 || dims_element.data.len() < 8 || dims_element.data.len() % 4 != 0 {
            return Err(format!("dimensions are type {} of {} bytes", dims_element.kind, dims_element.data.len()));
        }
        let mut dims = Vec::with_capacity(dims_element.data.len() / 4);
        for d in dims_element.data.chunks_exact(4) {
            let d = endian.u32(d.try_into().expect("4 bytes")) as i32;
            dims.push(usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?);
        }
        let numel = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("dimensions overflow")?;
        let name_element = c.element(endian)?;
        if name_element.kind != MI_INT8 {
            return Err(format!("array name is type {} (expected 1)", name_element.kind));
        }
        let name = String::from_utf8_lossy(name_element.data).into_owned();
        let value = match class {
            MX_CELL => {
                // Each item is an element of at least 8 bytes: a count beyond that is refused before allocating.
                if numel > (data.len() - c.pos) / 8 {
                    return Err(format!("'{name}': a cell of {numel} items in {} bytes", data.len() - c.pos));
                }
                let mut items = Vec::with_capacity(numel);
                for i in 0..numel {
                    let item = c.element(endian).map_err(|m| format!("'{name}' item {i}: {m}"))?;
                    if item.kind != MI_MATRIX {
                        return Err(format!("'{name}' item {i} is element type {} (expected 14)", item.kind));
                    }
                    items.push(self.matrix(item.data, depth + 1).map_err(|m| format!("'{name}' item {i}: {m}"))?.1);
                }
                MatValue::Cell { dims, items }
            }
            MX_STRUCT => {
                // The longest field name plus its NUL, then the names, each padded to that length.
                let width = c.element(endian).map_err(|m| format!("'{name}': {m}"))?;
                if width.kind != MI_INT32 || width.data.len() != 4 {
                    return Err(format!(
                        "'{name}': field name length is type {} of {} bytes",
                        width.kind,
                        width.data.len()
                    ));
                }
                let width = endian.u32(width.data.try_into().expect("4 bytes")) as usize;
                let names = c.element(endian).map_err(|m| format!("'{name}': {m}"))?;
                if names.kind != MI_INT8
                    || (width == 0 && !names.data.is_empty())
                    || (width > 0 && names.data.len() % width != 0)
                {
                    return Err(format!("'{name}': field names of {} bytes in slots of {width}", names.data.len()));
                }
                let fields: Vec<String> = names
                    .data
                    .chunks(width.max(1))
                    .map(|n| String::from_utf8_lossy(n.split(|&b| b == 0).next().unwrap_or(&[])).into_owned())
                    .collect();
                let count = numel.checked_mul(fields.len()).ok_or("dimensions overflow")?;
                if count > (data.len() - c.pos) / 8 {
                    return Err(format!("'{name}': a struct of {count} field values in {} bytes", data.len() - c.pos));
                }
                let mut items = Vec::with_capacity(count);
                for i in 0..count {
                    let field = &fields[i % fields.len()];
                    let item = c.element(endian).map_err(|m| format!("'{name}' field '{field}': {m}"))?;
                    if item.kind != MI_MATRIX {
                        return Err(format!("'{name}' field '{field}' is element type {} (expected 14)", item.kind));
                    }
                    let value =
                        self.matrix(item.data, depth + 1).map_err(|m| format!("'{name}' field '{field}': {m}"))?;
                    items.push(value.1);
                }
                MatValue::Struct { dims, fields, items }
            }
            6..=15 => {
                if complex {
                    return Err(format!("'{name}' is complex; iqa reads real arrays"));
                }
                let real = c.element(endian).map_err(|m| format!("'{name}': {m}"))?;
                let values = self.numbers(real.kind, real.data, numel).map_err(|m| format!("'{name}': {m}"))?;
                MatValue::Numeric { dims, single: class == 7, data: values }
            }
            _ => MatValue::Unsupported { class },
        };
        Ok((name, value))
    }

    /// `numel` values stored as MAT type `kind` (which may be narrower than the array's class: MATLAB stores
    /// integer-valued doubles as small integers) converted to f64.
    fn numbers(&self, kind: u32, data: &[u8], numel: usize) -> Result<Vec<f64>, String> {
        let width = match kind {
            1 | 2 => 1,
            3 | 4 => 2,
            5..=7 => 4,
            9 | 12 | 13 => 8,
            _ => return Err(format!("values stored as type {kind}, not a numeric type")),
        };
        if numel.checked_mul(width) != Some(data.len()) {
            return Err(format!("{numel} values of {width} bytes expected, {} bytes stored", data.len()));
        }
        let e = self.endian;
        Ok(data
            .chunks_exact(width)
            .map(|b| match kind {
                1 => b[0] as i8 as f64,
                2 => b[0] as f64,
                3 => e.u16([b[0], b[1]]) as i16 as f64,
                4 => e.u16([b[0], b[1]]) as f64,
                5 => e.u32([b[0], b[1], b[2], b[3]]) as i32 as f64,
                6 => e.u32([b[0], b[1], b[2], b[3]]) as f64,
                7 => f32::from_bits(e.u32([b[0], b[1], b[2], b[3]])) as f64,
                9 => f64::from_bits(e.u64(b.try_into().expect("8 bytes"))),
                12 => e.u64(b.try_into().expect("8 bytes")) as i64 as f64,
                _ => e.u64(b.try_into().expect("8 bytes")) as f64,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian level-5 file of the given elements.
    fn file(elements: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![b' '; 116];
        out[..10].copy_from_slice(b"MATLAB 5.0");
        out.extend([0u8; 8]);
        out.extend(0x0100u16.to_le_bytes());
        out.extend(b"IM");
        for e in elements {
            out.extend(e);
        }
        out
    }

    fn element(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
        out
    }

    fn matrix(class: u32, dims: &[i32], name: &str, values: Option<(u32, &[u8])>, items: &[Vec<u8>]) -> Vec<u8> {
        let mut body = element(MI_UINT32, &[class.to_le_bytes(), [0; 4]].concat());
        body.extend(element(MI_INT32, &dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
        body.extend(element(MI_INT8, name.as_bytes()));
        if let Some((kind, data)) = values {
            body.extend(element(kind, data));
        }
        for item in items {
            body.extend(item);
        }
        element(MI_MATRIX, &body)
    }

    /// A struct array of `fields` whose values `items` are element-major.
    fn structure(dims: &[i32], name: &str, fields: &[&str], items: &[Vec<u8>]) -> Vec<u8> {
        let mut names = Vec::new();
        for f in fields {
            let mut slot = f.as_bytes().to_vec();
            slot.resize(32, 0);
            names.extend(slot);
        }
        // The name length as MATLAB writes it: a small element (type and size packed into one word).
        let width = [(MI_INT32 | 4 << 16).to_le_bytes(), 32u32.to_le_bytes()].concat();
        matrix(2, dims, name, None, &[vec![width, element(MI_INT8, &names)], items.to_vec()].concat())
    }

    fn doubles(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn numeric_cell_and_compressed_elements() {
        let a = matrix(6, &[2, 3], "a", Some((9, &doubles(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))), &[]);
        // Integer-valued doubles stored as uint8, as MATLAB writes them.
        let b = matrix(6, &[1, 3], "", Some((2, &[7, 8, 255])), &[]);
        let empty = element(MI_MATRIX, &[]);
        let cell = matrix(1, &[1, 2], "c", None, &[b.clone(), empty]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &cell).unwrap();
        let compressed = z.finish().unwrap();
        let mut tag = MI_COMPRESSED.to_le_bytes().to_vec();
        tag.extend((compressed.len() as u32).to_le_bytes());
        tag.extend(&compressed);
        let vars = read(&file(&[a, tag])).unwrap();
        assert_eq!(vars.len(), 2);
        assert_eq!(vars[0].0, "a");
        assert_eq!(
            vars[0].1,
            MatValue::Numeric { dims: vec![2, 3], single: false, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }
        );
        let MatValue::Cell { dims, items } = &vars[1].1 else { panic!("{:?}", vars[1]) };
        assert_eq!((vars[1].0.as_str(), dims.as_slice()), ("c", &[1, 2][..]));
        assert_eq!(items[0], MatValue::Numeric { dims: vec![1, 3], single: false, data: vec![7.0, 8.0, 255.0] });
        assert_eq!(items[1], MatValue::Numeric { dims: vec![0, 0], single: false, data: vec![] });
    }

    #[test]
    fn structs_nested_in_cells_keep_field_order() {
        let linear = matrix(6, &[2, 1], "", Some((9, &doubles(&[0.5, 0.25]))), &[]);
        let tree = |v: f64| {
            let a = matrix(6, &[1, 1], "", Some((9, &doubles(&[v]))), &[]);
            let b = matrix(12, &[1, 2], "", Some((5, &[1i32.to_le_bytes(), 2i32.to_le_bytes()].concat())), &[]);
            structure(&[1, 1], "", &["upper", "lDau"], &[a, b])
        };
        let forests = matrix(1, &[1, 2], "", None, &[tree(1.5), tree(2.5)]);
        let model = structure(&[1, 1], "model", &["linear", "rf"], &[linear, forests]);
        let vars = read(&file(&[model])).unwrap();
        let MatValue::Struct { dims, fields, items } = &vars[0].1 else { panic!("{:?}", vars[0]) };
        assert_eq!((vars[0].0.as_str(), dims.as_slice()), ("model", &[1, 1][..]));
        assert_eq!(*fields, ["linear", "rf"]);
        assert_eq!(items[0], MatValue::Numeric { dims: vec![2, 1], single: false, data: vec![0.5, 0.25] });
        let MatValue::Cell { items: trees, .. } = &items[1] else { panic!("{:?}", items[1]) };
        let MatValue::Struct { fields, items, .. } = &trees[1] else { panic!("{:?}", trees[1]) };
        assert_eq!(fields, &["upper", "lDau"]);
        assert_eq!(items[0], MatValue::Numeric { dims: vec![1, 1], single: false, data: vec![2.5] });
        assert_eq!(items[1], MatValue::Numeric { dims: vec![1, 2], single: false, data: vec![1.0, 2.0] });
        // A struct claiming more field values than its bytes can hold is refused before allocating.
        let big = structure(&[1, i32::MAX], "s", &["a", "b"], &[]);
        assert!(read(&file(&[big])).unwrap_err().contains("a struct of 4294967294 field values"));
    }

    #[test]
    fn bad_headers_and_claims_are_errors() {
        assert!(read(b"short").unwrap_err().contains("shorter than the 128-byte"));
        let mut v73 = file(&[]);
        v73[124..126].copy_from_slice(&0x0200u16.to_le_bytes());
        assert!(read(&v73).unwrap_err().contains("7.3 (HDF5)"));
        let mut v4 = file(&[]);
        v4[126..128].copy_from_slice(b"xx");
        assert!(read(&v4).unwrap_err().contains("not a MATLAB level-5"));
        // A huge claimed element length with nothing behind it.
        let mut huge = MI_MATRIX.to_le_bytes().to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(read(&file(&[huge])).unwrap_err().contains("truncated"));
        // A cell claiming 2^31 - 1 items in a few bytes: refused before any allocation.
        let cell = matrix(1, &[1, i32::MAX], "c", None, &[]);
        assert!(read(&file(&[cell])).unwrap_err().contains("a cell of 2147483647 items"));
        // Value bytes that do not match the dimensions.
        let short = matrix(6, &[2, 2], "m", Some((9, &doubles(&[1.0, 2.0, 3.0]))), &[]);
        assert!(read(&file(&[short])).unwrap_err().contains("4 values of 8 bytes expected, 24 bytes stored"));
        let negative = matrix(6, &[-1, 2], "m", Some((9, &[])), &[]);
        assert!(read(&file(&[negative])).unwrap_err().contains("negative dimension -1"));
        // Cells nested past the limit.
        let mut nested = matrix(6, &[1, 1], "", Some((9, &doubles(&[1.0]))), &[]);
        for _ in 0..=MAX_DEPTH {
            nested = matrix(1, &[1, 1], "", None, &[nested]);
        }
        assert!(read(&file(&[nested])).unwrap_err().contains("nested deeper than 16"));
    }

    #[test]
    fn a_compression_bomb_stops_at_the_cap() {
        let zeros = vec![0u8; 1 << 20];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..(MAX_DECOMPRESSED >> 20) + 1 {
            std::io::Write::write_all(&mut z, &zeros).unwrap();
        }
        let compressed = z.finish().unwrap();
        let mut tag = MI_COMPRESSED.to_le_bytes().to_vec();
        tag.extend((compressed.len() as u32).to_le_bytes());
        tag.extend(&compressed);
        assert!(read(&file(&[tag])).unwrap_err().contains("expand past 256 MiB"));
    }

    /// Every truncation and many single-byte corruptions of a file with every construct are errors or values,
    /// never a panic.
    #[test]
    fn truncated_and_corrupted_files_never_panic() {
        let a = matrix(6, &[2, 2], "a", Some((9, &doubles(&[1.0, 2.0, 3.0, 4.0]))), &[]);
        let b = matrix(7, &[1, 1], "", Some((7, &1.5f32.to_le_bytes())), &[]);
        let cell = matrix(1, &[1, 2], "c", None, &[b.clone(), element(MI_MATRIX, &[])]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &cell).unwrap();
        let compressed = z.finish().unwrap();
        let mut tag = MI_COMPRESSED.to_le_bytes().to_vec();
        tag.extend((compressed.len() as u32).to_le_bytes());
        tag.extend(&compressed);
        let s = structure(&[1, 1], "s", &["x", "y"], &[b, element(MI_MATRIX, &[])]);
        let good = file(&[a, tag, s]);
        assert_eq!(read(&good).unwrap().len(), 3);
        for n in 0..good.len() {
            let _ = read(&good[..n]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bad = good.clone();
            let at = 128 + (state as usize) % (good.len() - 128);
            bad[at] = (state >> 32) as u8;
            let _ = read(&bad);
        }
    }
}
