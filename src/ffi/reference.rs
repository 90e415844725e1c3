//! The C ABI of prepared references: `IqaReference` over [`PreparedReference`], for one reference scored
//! against many distorted images. Same conventions as the rest of `ffi` (checked pointers, `entry`, tags).
use super::types::*;
use super::{checked_handle, checked_out, checked_ref, entry, image_from_c, score_all, score_one, IqaMetric};
use crate::api::PreparedReference;
use crate::error::{Error, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::addr_of;

/// Opaque prepared reference. Create with iqa_reference_create, free with iqa_reference_free.
pub struct IqaReference {
    tag: u64,
    reference: PreparedReference,
}

/// Marks a live reference ("IQAREFER"); overwritten when freed.
const LIVE_REFERENCE: u64 = 0x4951_4152_4546_4552;
const FREED_REFERENCE: u64 = 0xdead_dead_dead_dead;

/// # Safety
/// `p` must be NULL or point to readable memory of an `IqaReference`'s size.
unsafe fn checked_reference<'a>(p: *const IqaReference) -> Result<&'a PreparedReference> {
    let handle = checked_ref(p, "reference")?;
    if std::ptr::read_volatile(addr_of!(handle.tag)) != LIVE_REFERENCE {
        return Err(Error::invalid("reference is not a live IqaReference (already freed, or a foreign pointer)"));
    }
    Ok(&handle.reference)
}

/// Prepares `ref` once for scoring many distorted images against it with the full-reference metric of
/// `metric` (iqa_score_with_reference): its pixels are copied (the buffer may be reused on return) and
/// checked, and the metric's share of the work on the reference (the LPIPS and DISTS backbone activations,
/// SSIM's local statistics of the reference on the CPU, MAD's reference maps) is done now. Scores against it
/// equal iqa_score's on each pair. The reference may be used from many threads at once, with any handle of the
/// same metric, device and precision.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers, bad image, a no-reference metric), IQA_ERR_SHAPE_MISMATCH
/// (smaller than the metric's minimum), IQA_ERR_RUNTIME.
///
/// # Safety
/// `metric` a live handle or NULL; `ref` NULL or a valid image; `out_reference` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_reference_create(
    metric: *mut IqaMetric,
    r#ref: *const IqaImage,
    out_reference: *mut *mut IqaReference,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_reference, "out_reference")?;
        let image = image_from_c(r#ref, "ref")?;
        let reference = handle.metric.prepare_reference(&image)?;
        out_reference.write(Box::into_raw(Box::new(IqaReference { tag: LIVE_REFERENCE, reference })));
        Ok(())
    })
}

/// Scores `dist` against a prepared reference: the score iqa_score gives the pair.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers, bad image, a reference prepared by another metric, device
/// or precision), IQA_ERR_SHAPE_MISMATCH (sizes differ), IQA_ERR_RUNTIME.
///
/// # Safety
/// `metric` a live handle or NULL; `reference` a live reference or NULL; `dist` NULL or a valid image;
/// `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_with_reference(
    metric: *mut IqaMetric,
    reference: *const IqaReference,
    dist: *const IqaImage,
    out_score: *mut f64,
) -> IqaStatus {
    score_one(metric, dist, std::ptr::null(), out_score, image_from_c, |m, d, _| {
        Ok(m.score_with_reference(std::slice::from_ref(d), checked_reference(reference)?)?[0])
    })
}

/// Scores `count` distorted images against a prepared reference into out_scores[0..count): each the score of
/// iqa_score on its pair. On error no score is written.
///
/// # Safety
/// As iqa_score_with_reference; `dists` must point to `count` images, `out_scores` to `count` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_batch_with_reference(
    metric: *mut IqaMetric,
    reference: *const IqaReference,
    dists: *const IqaImage,
    count: usize,
    out_scores: *mut f64,
) -> IqaStatus {
    score_all(metric, dists, std::ptr::null(), count, out_scores, image_from_c, |m, d, _| {
        m.score_with_reference(d, checked_reference(reference)?)
    })
}

/// Frees a prepared reference (NULL is a no-op; a pointer that is not a live reference is ignored where
/// detectable). Do not free it while another thread is scoring against it.
///
/// # Safety
/// `reference` must be NULL or a reference from iqa_reference_create not yet freed.
#[no_mangle]
pub unsafe extern "C" fn iqa_reference_free(reference: *mut IqaReference) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if reference.is_null() || checked_reference(reference).is_err() {
            return;
        }
        std::ptr::write_volatile(&mut (*reference).tag, FREED_REFERENCE);
        drop(Box::from_raw(reference));
    }));
}
