//! The parameter files built into the library: `data/builtin/` (where each came from and its sha256:
//! data/builtin/PROVENANCE.md), embedded at build time so that niqe, brisque, ilniqe and the learned layers of
//! lpips* and dists need no file and no network; and CLIP's BPE vocabulary, for `nn::clip_tokenizer`.
use crate::error::{Error, ErrorKind, Result};
use std::collections::HashMap;
use tch::Tensor;

macro_rules! builtin_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/builtin/", $name))
    };
}

pub const NIQE_PRISTINE: &[u8] = builtin_file!("niqe_pris_params.safetensors");
pub const BRISQUE_SVM: &[u8] = builtin_file!("brisque_live_svm.safetensors");
pub const ILNIQE_PRISTINE: &[u8] = builtin_file!("ilniqe_pristine.safetensors");
pub const ILNIQE_PCA: &[u8] = builtin_file!("ilniqe_pca.safetensors");
pub const LPIPS_V0_1_ALEX: &[u8] = builtin_file!("lpips_v0.1_alex_lin.safetensors");
pub const LPIPS_V0_1_VGG: &[u8] = builtin_file!("lpips_v0.1_vgg_lin.safetensors");
pub const LPIPS_V0_1_SQUEEZE: &[u8] = builtin_file!("lpips_v0.1_squeeze_lin.safetensors");
pub const DISTS_ALPHA_BETA: &[u8] = builtin_file!("dists_alpha_beta.safetensors");
/// OpenAI CLIP's BPE merges (gzip), read by `nn::clip_tokenizer`.
pub const CLIP_BPE_VOCAB: &[u8] = builtin_file!("clip_bpe_simple_vocab_16e6.txt.gz");

/// The tensors of a built-in copy made of `parts` (safetensors files); `name` (the official file name) names it
/// in errors, which would mean a broken build.
pub fn read(parts: &[&[u8]], name: &str) -> Result<HashMap<String, Tensor>> {
    let mut tensors = HashMap::new();
    for part in parts {
        let read = super::read_safetensors(part)
            .map_err(|e| Error::new(ErrorKind::Weights, format!("the built-in copy of '{name}' is broken: {e}")))?;
        tensors.extend(read);
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Every embedded file is the one PROVENANCE.md lists, byte for byte.
    #[test]
    fn embedded_files_have_the_listed_sha256() {
        let provenance =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/builtin/PROVENANCE.md")).unwrap();
        let listed = |file: &str| -> String {
            let row = provenance.lines().find(|l| l.starts_with(&format!("| {file} |"))).expect(file);
            row.split('|').nth(2).unwrap().trim().to_string()
        };
        let embedded = [
            ("niqe_pris_params.safetensors", NIQE_PRISTINE),
            ("brisque_live_svm.safetensors", BRISQUE_SVM),
            ("ilniqe_pristine.safetensors", ILNIQE_PRISTINE),
            ("ilniqe_pca.safetensors", ILNIQE_PCA),
            ("lpips_v0.1_alex_lin.safetensors", LPIPS_V0_1_ALEX),
            ("lpips_v0.1_vgg_lin.safetensors", LPIPS_V0_1_VGG),
            ("lpips_v0.1_squeeze_lin.safetensors", LPIPS_V0_1_SQUEEZE),
            ("dists_alpha_beta.safetensors", DISTS_ALPHA_BETA),
            ("clip_bpe_simple_vocab_16e6.txt.gz", CLIP_BPE_VOCAB),
        ];
        for (file, bytes) in embedded {
            let digest: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(digest, listed(file), "{file}");
        }
        let total: usize = embedded.iter().map(|(_, b)| b.len()).sum();
        // The parameter files' 3,371,000 bytes and the CLIP vocabulary's 1,356,917 (PROVENANCE.md).
        assert_eq!(total, 3_371_000 + 1_356_917);
    }

    #[test]
    fn a_broken_part_is_a_weights_error_naming_the_file() {
        let e = read(&[NIQE_PRISTINE, &BRISQUE_SVM[..100]], "x.mat").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Weights);
        assert!(e.message.contains("built-in copy of 'x.mat'"), "{e}");
    }
}
