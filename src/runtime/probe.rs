//! Memory of what probing libtorch found: facts that depend on the CPU and the libtorch build (how an
//! operation rounds), measured once per key at first use and then reused by every handle.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

/// How many values of `a` and `b` differ in their bits (a value missing from the shorter one counts as
/// differing): how a probe or a test compares iqa's own kernel with libtorch's.
pub fn bits_differing<T: FloatBits>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.bits() != y.bits()).count() + a.len().abs_diff(b.len())
}

/// A float's bit pattern, for [`bits_differing`].
pub trait FloatBits: Copy {
    fn bits(self) -> u64;
}

impl FloatBits for f32 {
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
}

impl FloatBits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// Probe results by key (an image width, say), process-wide.
pub struct Probed<K, V>(OnceLock<Mutex<HashMap<K, V>>>);

impl<K: Eq + Hash, V: Copy> Probed<K, V> {
    pub const fn new() -> Self {
        Probed(OnceLock::new())
    }

    /// The value remembered for `key`, or `probe()`'s, remembered. The lock is not held while probing: two
    /// threads may probe the same key once each, and find the same value.
    pub fn get_or_probe(&self, key: K, probe: impl FnOnce() -> V) -> V {
        let found = self.0.get_or_init(Default::default);
        if let Some(&value) = found.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return value;
        }
        let value = probe();
        found.lock().unwrap_or_else(|e| e.into_inner()).insert(key, value);
        value
    }
}
