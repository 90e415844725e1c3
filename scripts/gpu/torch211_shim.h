/* Force-included (CXXFLAGS=-include) into torch-sys 0.26's C++ wrappers when iqa is built against libtorch 2.11
 * (`make gpu-bundle`). tch 0.26 is generated from libtorch 2.13, which has a few ops that 2.11 lacks or declares
 * with one argument fewer; their wrappers would not compile. iqa calls none of them: here each becomes a
 * function that throws (PROTECT turns that into a tch error), so the rest of torch-sys builds unchanged.
 * Declared in namespace torch, so that qualified lookup of torch::NAME finds these before at::NAME. */
#pragma once
#include <torch/torch.h>
#include <stdexcept>
#include <string>
#include <tuple>

namespace torch {
namespace iqa_torch211 {
[[noreturn]] inline void missing(const char *name) {
    throw std::runtime_error(std::string(name) + " is not available: iqa was built against libtorch 2.11");
}
}  // namespace iqa_torch211

#define IQA_TORCH211_MISSING(NAME)                                                                        \
    template <typename... Args> at::Tensor NAME(Args &&...) { iqa_torch211::missing(#NAME); }

/* Not in 2.11. */
IQA_TORCH211_MISSING(_upsample_lanczos2d_aa)
IQA_TORCH211_MISSING(_upsample_lanczos2d_aa_out)
IQA_TORCH211_MISSING(_upsample_lanczos2d_aa_backward)
IQA_TORCH211_MISSING(_upsample_lanczos2d_aa_backward_out)
IQA_TORCH211_MISSING(_philox_key_fold_in)
IQA_TORCH211_MISSING(_philox_key_split)
IQA_TORCH211_MISSING(_philox_normal)
IQA_TORCH211_MISSING(_philox_normal_)
IQA_TORCH211_MISSING(_philox_normal_out)
IQA_TORCH211_MISSING(_philox_uniform)
IQA_TORCH211_MISSING(_philox_uniform_)
IQA_TORCH211_MISSING(_philox_uniform_out)
IQA_TORCH211_MISSING(_flash_attention_forward_no_dropout_inplace)
#undef IQA_TORCH211_MISSING

/* 2.13 added `enable_gqa`; 2.11's declaration takes one argument fewer. */
template <typename... Args>
std::tuple<at::Tensor, at::Tensor> _scaled_dot_product_attention_math_for_mps(Args &&...) {
    iqa_torch211::missing("_scaled_dot_product_attention_math_for_mps");
}
}  // namespace torch
