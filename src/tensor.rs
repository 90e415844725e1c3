//! Tensors as plain memory: checked views of CPU tensors as slices for iqa's own CPU kernels, fresh output
//! tensors written through a slice, and [`FrozenTensor`] for model constants read by many threads.
use crate::error::{Error, ErrorKind, Result};
use tch::kind::Element;
use tch::{Device, Tensor};

/// The elements of a contiguous CPU tensor of element type `T`, or an error saying which of those it is not.
///
/// Tensors read this way are inputs of a computation: iqa applies in-place operations only to tensors it has
/// just created, so no one writes to the storage while the slice is borrowed.
pub fn cpu_slice<T: Element>(t: &Tensor) -> Result<&[T]> {
    check_layout::<T>(t)?;
    let len = t.numel();
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: checked above: a contiguous CPU tensor of `len` elements of type `T` (so `data_ptr` is aligned
    // for `T`), whose storage lives at least as long as the borrow of `t` and is not written meanwhile (see
    // the function's documentation).
    Ok(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, len) })
}

/// A CPU tensor just created and not yet shared, written through a slice: nothing else can see its storage
/// until [`FreshTensor::into_tensor`] hands it out, so the mutable slice is the only reference to that memory.
pub struct FreshTensor<T: Element> {
    tensor: Tensor,
    element: std::marker::PhantomData<T>,
}

impl<T: Element> FreshTensor<T> {
    /// An uninitialised (in libtorch's sense) contiguous tensor of `shape`: write every element before use.
    pub fn empty(shape: &[i64]) -> Result<Self> {
        let tensor = Tensor::f_empty(shape, (T::KIND, Device::Cpu))?;
        Ok(FreshTensor { tensor, element: std::marker::PhantomData })
    }

    /// Its elements.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.tensor.numel();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: a contiguous CPU tensor of `len` elements of type `T` made by `empty`; no other tensor
        // shares its storage before `into_tensor`, and `&mut self` makes this borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.tensor.data_ptr() as *mut T, len) }
    }

    /// The tensor, to be shared from now on.
    pub fn into_tensor(self) -> Tensor {
        self.tensor
    }
}

/// A CPU tensor that a loop refills in place, round after round (a stream worker's converted frames): each
/// round writes into memory already mapped, where a fresh tensor per round made the allocator map and fault in
/// new pages every time (glibc deletes a thread arena's extra heap as soon as it is free).
///
/// Whoever takes a handle from [`StagingTensor::refill`] drops it before the next refill: the handles are
/// read-only inputs of one computation, as every metric takes them.
pub struct StagingTensor<T: Element> {
    tensor: Option<Tensor>,
    element: std::marker::PhantomData<T>,
}

impl<T: Element> Default for StagingTensor<T> {
    fn default() -> Self {
        StagingTensor { tensor: None, element: std::marker::PhantomData }
    }
}

impl<T: Element> StagingTensor<T> {
    /// Writes a tensor of `shape` with `write` (every element) and hands out a handle to it. The memory is
    /// allocated again only when the shape grows: a smaller first dimension (a shorter batch) uses the start
    /// of the memory.
    pub fn refill(&mut self, shape: &[i64], write: impl FnOnce(&mut [T])) -> Result<Tensor> {
        let fits = |t: &Tensor| {
            let size = t.size();
            !shape.is_empty() && size.len() == shape.len() && size[1..] == shape[1..] && size[0] >= shape[0]
        };
        let whole = match self.tensor.take() {
            Some(t) if fits(&t) => t,
            _ => Tensor::f_empty(shape, (T::KIND, Device::Cpu))?,
        };
        let view = if shape.is_empty() { whole.shallow_clone() } else { whole.f_narrow(0, 0, shape[0])? };
        let mut fresh = FreshTensor::<T> { tensor: view, element: std::marker::PhantomData };
        write(fresh.as_mut_slice());
        self.tensor = Some(whole);
        Ok(fresh.into_tensor())
    }
}

/// Each image's sum (the elements of `t[i]`, for an N×… tensor) in float64, as an N-element float64 tensor on
/// `t`'s device. On the CPU the float32 elements are added in index order, one image at a time: libtorch splits a
/// reduction between its threads when there are fewer outputs than threads, so its last bit would follow the
/// thread count and the batch size.
pub fn per_image_sums_f64(t: &Tensor) -> Result<Tensor> {
    let n = t.size().first().copied().unwrap_or(1);
    if t.device() != Device::Cpu || t.kind() != tch::Kind::Float {
        return Ok(t.f_reshape([n, -1])?.f_sum_dim_intlist(&[1i64][..], false, tch::Kind::Double)?);
    }
    let t = t.f_contiguous()?;
    let values = cpu_slice::<f32>(&t)?;
    let per_image = if n > 0 { values.len() / n as usize } else { 0 };
    let sums: Vec<f64> = (0..n as usize)
        .map(|i| values[i * per_image..][..per_image].iter().fold(0.0, |sum, &v| sum + f64::from(v)))
        .collect();
    Ok(Tensor::f_from_slice(&sums)?)
}

fn check_layout<T: Element>(t: &Tensor) -> Result<()> {
    let internal = |what: String| Err(Error::new(ErrorKind::Runtime, format!("internal: {what}")));
    if t.device() != Device::Cpu {
        return internal(format!("expected a CPU tensor, got one on {:?}", t.device()));
    }
    if t.kind() != T::KIND {
        return internal(format!("expected a {:?} tensor, got {:?}", T::KIND, t.kind()));
    }
    if !t.is_contiguous() {
        return internal(format!("expected a contiguous tensor of shape {:?}", t.size()));
    }
    Ok(())
}

/// A tensor that is only ever read after construction, shared between threads.
///
/// `tch::Tensor` is `Send` but not `Sync`. Read-only use from several threads is safe in libtorch (ops on a
/// const tensor allocate new outputs; the storage refcount is atomic), and this wrapper only hands out
/// `&Tensor` for such use: no in-place op is ever applied to model constants.
pub struct FrozenTensor(Tensor);

// SAFETY: see the type's documentation; the tensor is never mutated after construction.
unsafe impl Sync for FrozenTensor {}

impl FrozenTensor {
    pub fn new(t: Tensor) -> Self {
        FrozenTensor(t)
    }
}

impl std::ops::Deref for FrozenTensor {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn per_image_sums_add_in_index_order_in_float64() {
        // 2^24 + 1 + 1 in float32 stays 2^24; in float64 it is 2^24 + 2.
        let t = Tensor::from_slice(&[16_777_216.0f32, 1.0, 1.0, 0.5, 0.25, -3.0]).view([2, 1, 3]);
        let sums = per_image_sums_f64(&t).unwrap();
        assert_eq!(sums.size(), [2]);
        assert_eq!(Vec::<f64>::try_from(&sums).unwrap(), [16_777_218.0, -2.25]);
        let strided = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]).tr();
        assert_eq!(Vec::<f64>::try_from(&per_image_sums_f64(&strided).unwrap()).unwrap(), [4.0, 6.0]);
    }

    #[test]
    fn slices_check_device_kind_and_layout() {
        let t = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 3]);
        assert_eq!(cpu_slice::<f32>(&t).unwrap(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let e = cpu_slice::<f64>(&t).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.contains("expected a Double tensor, got Float"), "{}", e.message);
        let e = cpu_slice::<f32>(&t.tr()).unwrap_err();
        assert!(e.message.contains("contiguous"), "{}", e.message);
        let mut fresh = FreshTensor::<f64>::empty(&[2, 2]).unwrap();
        fresh.as_mut_slice().iter_mut().enumerate().for_each(|(i, v)| *v = i as f64);
        assert_eq!(Vec::<f64>::try_from(fresh.into_tensor().view([-1])).unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(cpu_slice::<f32>(&Tensor::zeros([0, 3], (Kind::Float, Device::Cpu))).unwrap().len(), 0);
    }
}
