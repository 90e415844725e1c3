//! A restricted unpickler: exactly the subset of Python's pickle format that `torch.save` writes for a tensor
//! state dict, and nothing else.
//!
//! It never executes anything. The only "globals" it accepts are a short allow-list (`collections.OrderedDict`,
//! torch's tensor/parameter rebuild functions, torch's storage types, `torch.Size`), each interpreted here by
//! its meaning (build a dict, describe a tensor); every other global (`os.system`, `builtins.eval`, any class) is
//! refused with an error naming it. Tensors come out as [`TensorSpec`]s (storage reference, offset, size,
//! stride); the container format ([`super::torch_file`]) supplies the storage bytes.
//!
//! Objects that can be shared or mutated (lists, dicts, tuples, tensors) live in a heap (`Vec<Object>`) and are
//! referred to by index, so the pickle memo shares them exactly as Python does and a self-referencing pickle
//! cannot create an ownership cycle.
use std::collections::HashMap;
use std::rc::Rc;

/// A pickle value. Containers and tensors are `Ref`s into the heap.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    /// Python ints; 128 bits hold every int a state dict has (the legacy magic number needs 80).
    Int(i128),
    // Floats and bytes are parsed (a state dict may hold them as non-tensor values) but no tensor needs them.
    #[allow(dead_code)]
    Float(f64),
    Str(Rc<str>),
    #[allow(dead_code)]
    Bytes(Rc<[u8]>),
    /// One of the allowed globals (a class or function reference, not yet called).
    Global(Global),
    Ref(usize),
}

/// The globals this unpickler understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Parameter,
    TorchSize,
    Storage(StorageType),
    /// A TorchScript module's class (`__torch__.…`, in a `torch.jit.save` archive's data.pkl): created empty and
    /// given its attributes by BUILD, it is read as the dict of those attributes. Its code is never looked at.
    ScriptObject,
}

/// The element type of a torch storage class (`torch.FloatStorage`, ...), `torch.UntypedStorage` = bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageType {
    Float,
    Double,
    Half,
    BFloat16,
    Long,
    Int,
    Short,
    Char,
    Byte,
    Bool,
    ComplexFloat,
    ComplexDouble,
    Untyped,
}

impl StorageType {
    fn from_class_name(name: &str) -> Option<StorageType> {
        use StorageType::*;
        Some(match name {
            "FloatStorage" => Float,
            "DoubleStorage" => Double,
            "HalfStorage" => Half,
            "BFloat16Storage" => BFloat16,
            "LongStorage" => Long,
            "IntStorage" => Int,
            "ShortStorage" => Short,
            "CharStorage" => Char,
            "ByteStorage" => Byte,
            "BoolStorage" => Bool,
            "ComplexFloatStorage" => ComplexFloat,
            "ComplexDoubleStorage" => ComplexDouble,
            "UntypedStorage" => Untyped,
            _ => return None,
        })
    }

    pub(crate) fn kind(self) -> tch::Kind {
        use tch::Kind;
        match self {
            StorageType::Float => Kind::Float,
            StorageType::Double => Kind::Double,
            StorageType::Half => Kind::Half,
            StorageType::BFloat16 => Kind::BFloat16,
            StorageType::Long => Kind::Int64,
            StorageType::Int => Kind::Int,
            StorageType::Short => Kind::Int16,
            StorageType::Char => Kind::Int8,
            StorageType::Byte | StorageType::Untyped => Kind::Uint8,
            StorageType::Bool => Kind::Bool,
            StorageType::ComplexFloat => Kind::ComplexFloat,
            StorageType::ComplexDouble => Kind::ComplexDouble,
        }
    }

    /// Bytes per element.
    pub(crate) fn element_size(self) -> usize {
        match self {
            StorageType::Byte | StorageType::Char | StorageType::Bool | StorageType::Untyped => 1,
            StorageType::Half | StorageType::BFloat16 | StorageType::Short => 2,
            StorageType::Float | StorageType::Int => 4,
            StorageType::Double | StorageType::Long | StorageType::ComplexFloat => 8,
            StorageType::ComplexDouble => 16,
        }
    }

    /// The unit a byte swap works on (a complex number is two reals).
    pub(crate) fn swap_unit(self) -> usize {
        match self {
            StorageType::ComplexFloat => 4,
            StorageType::ComplexDouble => 8,
            other => other.element_size(),
        }
    }
}

/// A tensor as the pickle describes it: a view (offset, size, stride, in elements) into a storage. `storage` is
/// the heap index of the persistent id (`Object::Persistent`) that names the storage.
#[derive(Debug, Clone)]
pub(crate) struct TensorSpec {
    pub storage: usize,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// A heap object.
#[derive(Debug)]
pub(crate) enum Object {
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A persistent id (BINPERSID): torch's reference to a storage, interpreted by the container format.
    Persistent(Value),
    Tensor(TensorSpec),
}

/// The result of one pickle: its top-level value and the heap its `Ref`s point into.
#[derive(Debug)]
pub(crate) struct Pickle {
    pub root: Value,
    pub heap: Vec<Object>,
}

impl Pickle {
    pub(crate) fn get(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Ref(i) => self.heap.get(*i),
            _ => None,
        }
    }

    /// The items of a tuple (or list) value.
    pub(crate) fn items<'a>(&'a self, v: &Value) -> Option<&'a [Value]> {
        match self.get(v)? {
            Object::Tuple(items) | Object::List(items) => Some(items),
            _ => None,
        }
    }
}

/// Parses one pickle from the start of `data`. Returns it and the number of bytes it took (up to and including
/// STOP), so that several pickles written one after another (the legacy torch format) can be read in turn.
/// Errors are plain messages ("forbidden global os.system at byte 2"); the caller adds the file name.
pub(crate) fn parse(data: &[u8]) -> Result<(Pickle, usize), String> {
    let mut u = Unpickler {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        heap: Vec::new(),
        script_objects: Default::default(),
    };
    let root = u.run()?;
    Ok((Pickle { root, heap: u.heap }, u.pos))
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    heap: Vec<Object>,
    /// Heap indices of the dicts that stand for TorchScript objects (BUILD fills them).
    script_objects: std::collections::HashSet<usize>,
}

/// A description of each opcode refused on purpose, for the error message.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x92 => "NEWOBJ_EX",
        0x82..=0x84 => "EXT",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        b'P' => "PERSID (text persistent id)",
        _ => "unknown opcode",
    }
}

impl<'a> Unpickler<'a> {
    fn err<T>(&self, what: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{what} (pickle byte {})", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.data.len() - self.pos {
            return self.err(format!("truncated: {n} bytes needed, {} left", self.data.len() - self.pos));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn len_u64(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n).or_else(|_| self.err(format!("length {n} too large")))
    }

    /// A text line (protocol 0 arguments), without its newline.
    fn line(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => self.err("truncated: unterminated text line"),
        }
    }

    fn line_str(&mut self) -> Result<&'a str, String> {
        let l = self.line()?;
        std::str::from_utf8(l).or_else(|_| self.err("text line is not UTF-8"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        Ok(self.stack.pop().unwrap_or(Value::None))
    }

    fn top(&self) -> Result<&Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        self.stack.last().map_or_else(|| self.err("stack underflow"), Ok)
    }

    /// The values pushed since the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        match self.marks.pop() {
            Some(at) => Ok(self.stack.split_off(at)),
            None => self.err("no MARK on the stack"),
        }
    }

    fn alloc(&mut self, o: Object) -> Value {
        self.heap.push(o);
        Value::Ref(self.heap.len() - 1)
    }

    fn memo_get(&mut self, idx: u32) -> Result<(), String> {
        match self.memo.get(&idx) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => self.err(format!("memo key {idx} is not defined")),
        }
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    fn text_int(&mut self) -> Result<u32, String> {
        let s = self.line_str()?;
        s.trim().parse().or_else(|_| self.err(format!("bad memo index {s:?}")))
    }

    fn int_from_le(&self, bytes: &[u8]) -> Result<i128, String> {
        if bytes.is_empty() {
            return Ok(0);
        }
        if bytes.len() > 16 {
            return self.err(format!("integer of {} bytes is too large", bytes.len()));
        }
        let negative = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut buf = [if negative { 0xff } else { 0 }; 16];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(i128::from_le_bytes(buf))
    }

    fn string(&self, bytes: &[u8]) -> Result<Value, String> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(Rc::from(s))),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    /// A Python 2 `str` (STRING/BINSTRING/SHORT_BINSTRING): torch.load decodes these as UTF-8; fall back to
    /// Latin-1 as Python's `encoding='latin1'` would.
    fn py2_string(&self, bytes: &[u8]) -> Value {
        match std::str::from_utf8(bytes) {
            Ok(s) => Value::Str(Rc::from(s)),
            Err(_) => Value::Str(Rc::from(bytes.iter().map(|&b| b as char).collect::<String>().as_str())),
        }
    }

    fn dict_mut(&mut self, target: &Value) -> Result<&mut Vec<(Value, Value)>, String> {
        let pos = self.pos;
        match target {
            Value::Ref(i) => match self.heap.get_mut(*i) {
                Some(Object::Dict(d)) => Ok(d),
                _ => Err(format!("SETITEM(S) on something that is not a dict (pickle byte {pos})")),
            },
            _ => Err(format!("SETITEM(S) on something that is not a dict (pickle byte {pos})")),
        }
    }

    fn list_mut(&mut self, target: &Value) -> Result<&mut Vec<Value>, String> {
        let pos = self.pos;
        match target {
            Value::Ref(i) => match self.heap.get_mut(*i) {
                Some(Object::List(l)) => Ok(l),
                _ => Err(format!("APPEND(S) on something that is not a list (pickle byte {pos})")),
            },
            _ => Err(format!("APPEND(S) on something that is not a list (pickle byte {pos})")),
        }
    }

    fn global(&self, module: &str, name: &str) -> Result<Global, String> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
            ("torch.nn.parameter", "Parameter") => Global::Parameter,
            ("torch", "Size") => Global::TorchSize,
            (m, _) if m == "__torch__" || m.starts_with("__torch__.") => Global::ScriptObject,
            ("torch", storage) if StorageType::from_class_name(storage).is_some() => {
                Global::Storage(StorageType::from_class_name(storage).unwrap_or(StorageType::Untyped))
            }
            _ => {
                return self.err(format!(
                    "forbidden global {module}.{name}: only the globals of a plain tensor state dict are allowed \
                     (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage, ...), \
                     so nothing in the file is executed"
                ))
            }
        };
        Ok(g)
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v);
                }
                // Integers
                b'I' => {
                    let s = self.line_str()?;
                    let v = match s {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(s.trim().parse().or_else(|_| self.err(format!("bad INT {s:?}")))?),
                    };
                    self.push(v);
                }
                b'L' => {
                    let s = self.line_str()?;
                    let t = s.trim().trim_end_matches('L');
                    let v = t.parse().or_else(|_| self.err(format!("bad LONG {s:?}")))?;
                    self.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i128));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i128));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i128));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    let v = self.int_from_le(bytes)?;
                    self.push(Value::Int(v));
                }
                0x8b => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return self.err("negative LONG4 length");
                    }
                    let bytes = self.take(n as usize)?;
                    let v = self.int_from_le(bytes)?;
                    self.push(Value::Int(v));
                }
                // Floats
                b'G' => {
                    let b = self.take(8)?;
                    self.push(Value::Float(f64::from_be_bytes(b.try_into().unwrap_or_default())));
                }
                b'F' => {
                    let s = self.line_str()?;
                    let v = s.trim().parse().or_else(|_| self.err(format!("bad FLOAT {s:?}")))?;
                    self.push(Value::Float(v));
                }
                // Constants
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                // Strings and bytes
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let v = self.string(b)?;
                    self.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.string(b)?;
                    self.push(v);
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    let v = self.string(b)?;
                    self.push(v);
                }
                b'V' => {
                    let l = self.line()?;
                    let s = decode_raw_unicode_escape(l).map_or_else(|e| self.err(e), Ok)?;
                    self.push(Value::Str(Rc::from(s.as_str())));
                }
                b'S' => {
                    let l = self.line()?;
                    let s = decode_quoted_string(l).map_or_else(|e| self.err(e), Ok)?;
                    let v = self.py2_string(&s);
                    self.push(v);
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return self.err("negative BINSTRING length");
                    }
                    let b = self.take(n as usize)?;
                    let v = self.py2_string(b);
                    self.push(v);
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.py2_string(b);
                    self.push(v);
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                0x8e => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                // Containers
                b']' => {
                    let v = self.alloc(Object::List(Vec::new()));
                    self.push(v);
                }
                b'}' => {
                    let v = self.alloc(Object::Dict(Vec::new()));
                    self.push(v);
                }
                b')' => {
                    let v = self.alloc(Object::Tuple(Vec::new()));
                    self.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::List(items));
                    self.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::Tuple(items));
                    self.push(v);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return self.err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = self.alloc(Object::Tuple(items));
                    self.push(v);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.err("DICT with an odd number of items");
                    }
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    let v = self.alloc(Object::Dict(pairs));
                    self.push(v);
                }
                b'a' => {
                    let v = self.pop()?;
                    let target = self.top()?.clone();
                    self.list_mut(&target)?.push(v);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.list_mut(&target)?.extend(items);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?.clone();
                    self.dict_mut(&target)?.push((k, v));
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.err("SETITEMS with an odd number of items");
                    }
                    let target = self.top()?.clone();
                    let dict = self.dict_mut(&target)?;
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        dict.push((k, v));
                    }
                }
                // Memo
                b'p' => {
                    let i = self.text_int()?;
                    self.memo_put(i)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).or_else(|_| self.err("memo too large"))?;
                    self.memo_put(i)?;
                }
                b'g' => {
                    let i = self.text_int()?;
                    self.memo_get(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                // Globals and calls
                b'c' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let g = self.global(module.trim(), name.trim())?;
                    self.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let g = match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => self.global(m, n)?,
                        _ => return self.err("STACK_GLOBAL with non-string module or name"),
                    };
                    self.push(Value::Global(g));
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(&callable, &args, op == 0x81)?;
                    self.push(v);
                }
                b'b' => {
                    // BUILD: set the state of the object on the stack. A state dict's OrderedDict carries
                    // `_metadata` (module versions) as instance attributes; it is not data, so it is dropped.
                    // A TorchScript object's state is its attributes: they become its items.
                    let state = self.pop()?;
                    let target = self.top()?.clone();
                    match (&target, self.get(&target)) {
                        (Value::Ref(i), Some(Object::Dict(_))) if self.script_objects.contains(i) => {
                            let attributes = match self.get(&state) {
                                Some(Object::Dict(items)) => items.clone(),
                                _ => return self.err("BUILD of a TorchScript object with a state that is not a dict"),
                            };
                            self.dict_mut(&target)?.extend(attributes);
                        }
                        (_, Some(Object::Dict(_))) => {}
                        _ => return self.err("BUILD (object state) on something other than a dict is not supported"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.alloc(Object::Persistent(pid));
                    self.push(v);
                }
                other => {
                    return self.err(format!(
                        "unsupported pickle opcode {} (0x{other:02x}): not part of a tensor state dict",
                        opcode_name(other)
                    ))
                }
            }
        }
    }

    fn get(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Ref(i) => self.heap.get(*i),
            _ => None,
        }
    }

    fn tuple_items(&self, v: &Value, what: &str) -> Result<Vec<Value>, String> {
        match self.get(v) {
            Some(Object::Tuple(items)) | Some(Object::List(items)) => Ok(items.clone()),
            _ => self.err(format!("{what}: expected a tuple")),
        }
    }

    fn int_arg(&self, v: &Value, what: &str) -> Result<i64, String> {
        match v {
            Value::Int(i) => i64::try_from(*i).or_else(|_| self.err(format!("{what}: {i} out of range"))),
            _ => self.err(format!("{what}: expected an integer")),
        }
    }

    fn int_tuple(&self, v: &Value, what: &str) -> Result<Vec<i64>, String> {
        self.tuple_items(v, what)?.iter().map(|x| self.int_arg(x, what)).collect()
    }

    fn tensor_arg(&self, v: &Value, what: &str) -> Result<Value, String> {
        match self.get(v) {
            Some(Object::Tensor(_)) => Ok(v.clone()),
            _ => self.err(format!("{what}: expected a tensor")),
        }
    }

    /// REDUCE / NEWOBJ of an allowed global: evaluated by meaning, never by running anything.
    fn call(&mut self, callable: &Value, args: &Value, newobj: bool) -> Result<Value, String> {
        let g = match callable {
            Value::Global(g) => *g,
            _ => return self.err("REDUCE of something that is not an allowed global"),
        };
        let args = self.tuple_items(args, "call arguments")?;
        if newobj && !matches!(g, Global::OrderedDict | Global::ScriptObject) {
            return self.err(format!("NEWOBJ of {g:?} is not supported"));
        }
        match g {
            Global::ScriptObject if newobj && args.is_empty() => {
                let v = self.alloc(Object::Dict(Vec::new()));
                if let Value::Ref(i) = v {
                    self.script_objects.insert(i);
                }
                Ok(v)
            }
            Global::ScriptObject => {
                self.err("a TorchScript object is only ever created empty (NEWOBJ of no arguments)")
            }
            Global::OrderedDict => {
                let mut pairs = Vec::new();
                if let Some(init) = args.first() {
                    // OrderedDict([(k, v), ...])
                    for item in self.tuple_items(init, "OrderedDict items")? {
                        let kv = self.tuple_items(&item, "OrderedDict item")?;
                        if kv.len() != 2 {
                            return self.err("OrderedDict item is not a pair");
                        }
                        pairs.push((kv[0].clone(), kv[1].clone()));
                    }
                }
                Ok(self.alloc(Object::Dict(pairs)))
            }
            Global::RebuildTensor | Global::RebuildTensorV2 => {
                let min = if g == Global::RebuildTensor { 4 } else { 6 };
                if args.len() < min || args.len() > 7 {
                    return self.err(format!("{g:?} with {} arguments", args.len()));
                }
                let storage = match (&args[0], self.get(&args[0])) {
                    (Value::Ref(i), Some(Object::Persistent(_))) => *i,
                    _ => return self.err("tensor storage is not a persistent storage reference"),
                };
                let offset = self.int_arg(&args[1], "storage offset")?;
                let size = self.int_tuple(&args[2], "tensor size")?;
                let stride = self.int_tuple(&args[3], "tensor stride")?;
                Ok(self.alloc(Object::Tensor(TensorSpec { storage, offset, size, stride })))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState | Global::Parameter => match args.first() {
                Some(t) => self.tensor_arg(t, "parameter data"),
                None => self.err("parameter without data"),
            },
            Global::TorchSize => match args.first() {
                Some(t) => {
                    let items = self.tuple_items(t, "torch.Size")?;
                    Ok(self.alloc(Object::Tuple(items)))
                }
                None => Ok(self.alloc(Object::Tuple(Vec::new()))),
            },
            Global::Storage(_) => self.err("constructing a storage object is not supported"),
        }
    }
}

/// Python's `raw-unicode-escape` codec (protocol 0 UNICODE): `\uXXXX` and `\UXXXXXXXX`, other bytes Latin-1.
fn decode_raw_unicode_escape(bytes: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() && (bytes[i + 1] == b'u' || bytes[i + 1] == b'U') {
            let n = if bytes[i + 1] == b'u' { 4 } else { 8 };
            let hex = bytes.get(i + 2..i + 2 + n).ok_or("truncated \\u escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
            let code = u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?;
            out.push(char::from_u32(code).ok_or("bad \\u escape")?);
            i += 2 + n;
        } else {
            out.push(b as char);
            i += 1;
        }
    }
    Ok(out)
}

/// Protocol 0 STRING: a Python 2 repr, quoted with ' or ", with backslash escapes.
fn decode_quoted_string(line: &[u8]) -> Result<Vec<u8>, String> {
    let q = *line.first().ok_or("empty STRING")?;
    if line.len() < 2 || (q != b'\'' && q != b'"') || line[line.len() - 1] != q {
        return Err("STRING is not quoted".into());
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1).ok_or("truncated escape in STRING")?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0' => out.push(0),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let hex = body.get(i..i + 2).ok_or("truncated \\x escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// {'a': [1, 2.5, 'x', None, True]} with memo, protocol 2, as pickle.dumps writes it.
    const SAMPLE: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00\
        X\x01\x00\x00\x00xq\x03N\x88es.";

    #[test]
    fn primitives_and_memo() {
        let p = SAMPLE;
        let (pk, used) = parse(p).unwrap();
        assert_eq!(used, p.len());
        let Some(Object::Dict(d)) = pk.get(&pk.root) else { panic!("not a dict") };
        assert_eq!(d.len(), 1);
        let items = pk.items(&d[0].1).unwrap();
        assert_eq!(items.len(), 5);
        assert!(matches!(items[0], Value::Int(1)));
        assert!(matches!(items[1], Value::Float(f) if f == 2.5));
        assert!(matches!(&items[2], Value::Str(s) if &**s == "x"));
        assert!(matches!(items[3], Value::None));
        assert!(matches!(items[4], Value::Bool(true)));
    }

    #[test]
    fn big_int_and_protocol0() {
        // The legacy torch magic number (LONG1, 10 bytes), then a protocol 0 pickle: (1L, u'\u00e9', 'a\'b').
        let magic = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
        let (pk, _) = parse(magic).unwrap();
        assert!(matches!(pk.root, Value::Int(0x1950a86a20f9469cfc6c)));
        let p0 = b"(L1L\nV\\u00e9\np0\nS'a\\'b'\np1\ntp2\n.";
        let (pk, _) = parse(p0).unwrap();
        let items = pk.items(&pk.root).unwrap();
        assert!(matches!(items[0], Value::Int(1)));
        assert!(matches!(&items[1], Value::Str(s) if &**s == "\u{e9}"));
        assert!(matches!(&items[2], Value::Str(s) if &**s == "a'b"));
    }

    #[test]
    fn refuses_code() {
        for p in [
            &b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."[..],
            b"cbuiltins\neval\n(S'1'\ntR.",
            b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.",
        ] {
            let e = parse(p).unwrap_err();
            assert!(e.contains("forbidden global"), "{e}");
        }
        let e = parse(b"(cos\nsystem\nS'ls'\no.").unwrap_err();
        assert!(e.contains("forbidden global os.system"), "{e}");
        // INST names its class inline: refused as an opcode before anything is looked up.
        let e = parse(b"(S'ls'\nios\nsystem\n.").unwrap_err();
        assert!(e.contains("INST"), "{e}");
    }

    #[test]
    fn malformed_never_panics() {
        let p = SAMPLE;
        for cut in 0..p.len() {
            assert!(parse(&p[..cut]).is_err());
        }
        for bad in [
            &b"a."[..],
            b"s.",
            b"h\x05.",
            b"1.",
            b"(t\x86.",
            b"X\xff\xff\xff\xff",
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
