"""Writes the parameter files built into libiqa (data/builtin/) and the pyiqa-format test files (tests/data/weights/).

Run with the project's Python and the shared weights beside the checkout:
`.venv/bin/python scripts/make_builtin_weights.py [--shared DIR]` (default: IQA_WEIGHTS_DIR, else ../shared/weights).

data/builtin/: the small parameter files of niqe, brisque, ilniqe, the LPIPS v0.1 linear layers and DISTS, taken from
the verified shared copies (PROVENANCE.md there). Files under 2 MiB are byte copies; IL-NIQE's template (3.1 MB) is
cut into two files, the pristine Gaussian and the PCA projection, with the tensors unchanged (float64, same values,
shapes and key names). Every written tensor is checked bit for bit against its source, and IL-NIQE's also against
the official MATLAB file (read by scipy). The sha256 of each file is printed for data/builtin/PROVENANCE.md.

tests/data/weights/: the layouts pyiqa reads, made from the same values, because pyiqa's own assets cannot be
downloaded here: `niqe_modelparameters.mat` (MATLAB v5, compressed, `mu_prisparam` 1x36 and `cov_prisparam`
36x36, as LIVE's file) and `brisque_svm_weights.pth` (`torch.save((sv_coef, sv))`, as pyiqa's file).
"""
import argparse
import os
import hashlib
import shutil
from pathlib import Path

import numpy as np
import scipy.io
import torch
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ROOT / "data" / "builtin"
TEST_WEIGHTS = ROOT / "tests" / "data" / "weights"
LIMIT = 2 * 1024 * 1024

COPIES = [
    "niqe/niqe_pris_params.safetensors",
    "brisque/brisque_live_svm.safetensors",
    "lpips/lpips_v0.1_alex_lin.safetensors",
    "lpips/lpips_v0.1_vgg_lin.safetensors",
    "lpips/lpips_v0.1_squeeze_lin.safetensors",
    "dists/dists_alpha_beta.safetensors",
]
ILNIQE_PARTS = {
    "ilniqe_pristine.safetensors": ["mu_pris_param", "cov_pris_param"],
    "ilniqe_pca.safetensors": ["mean_of_sample_data", "principle_vectors"],
}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def main():
    parser = argparse.ArgumentParser()
    default = os.environ.get("IQA_WEIGHTS_DIR") or ROOT.parent / "shared" / "weights"
    parser.add_argument("--shared", type=Path, default=Path(default))
    shared = parser.parse_args().shared
    BUILTIN.mkdir(parents=True, exist_ok=True)
    TEST_WEIGHTS.mkdir(parents=True, exist_ok=True)

    rows = []
    for rel in COPIES:
        src = shared / rel
        dst = BUILTIN / src.name
        shutil.copyfile(src, dst)
        rows.append((dst.name, src, "byte copy"))

    src = shared / "ilniqe" / "ILNIQE_templateModel.safetensors"
    template = load_file(src)
    official = scipy.io.loadmat(shared / "ilniqe" / "ILNIQE_templateModel.mat")["templateModel"][0]
    for index, key in enumerate(["mu_pris_param", "cov_pris_param", "mean_of_sample_data", "principle_vectors"]):
        mat = official[index]
        assert mat.dtype == np.float64 and np.array_equal(mat.reshape(template[key].shape), template[key]), key
    for name, keys in ILNIQE_PARTS.items():
        dst = BUILTIN / name
        save_file({k: template[k] for k in keys}, dst)
        back = load_file(dst)
        assert sorted(back) == sorted(keys) and all(same_bits(back[k], template[k]) for k in keys), name
        rows.append((name, src, "keys " + ", ".join(keys)))

    for name, source, how in rows:
        size = (BUILTIN / name).stat().st_size
        assert size < LIMIT, f"{name} is {size} bytes"
        print(f"| {name} | {sha256(BUILTIN / name)} | {size} | {source.relative_to(shared)} ({sha256(source)}), {how} |")

    niqe = load_file(shared / "niqe" / "niqe_pris_params.safetensors")
    mat = TEST_WEIGHTS / "niqe_modelparameters.mat"
    scipy.io.savemat(
        mat,
        {"mu_prisparam": niqe["mu_pris_param"].reshape(1, -1), "cov_prisparam": niqe["cov_pris_param"]},
        do_compression=True,
        format="5",
    )
    back = scipy.io.loadmat(mat)
    assert same_bits(back["mu_prisparam"].ravel(), niqe["mu_pris_param"])
    assert same_bits(back["cov_prisparam"], niqe["cov_pris_param"])

    brisque = load_file(shared / "brisque" / "brisque_live_svm.safetensors")
    pth = TEST_WEIGHTS / "brisque_svm_weights.pth"
    torch.save((torch.from_numpy(brisque["sv_coef"]), torch.from_numpy(brisque["sv"])), pth)
    for path in (mat, pth):
        print(f"test file {path.relative_to(ROOT)}: {sha256(path)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
