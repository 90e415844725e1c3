"""Writes the small torch.save files that tests/weights.rs loads (tests/data/weights/).

Run once with the project's Python: `.venv/bin/python scripts/make_test_weights.py`. The same state dict is saved in
the zip format (torch >= 1.6 default) and the legacy format (`_use_new_zipfile_serialization=False`); the expected
values are written out in tests/weights.rs.
"""
from collections import OrderedDict
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "weights"


def state_dict():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)  # one storage of 12 floats shared by two views
    sd = OrderedDict()
    sd["f32"] = torch.tensor([[0.5, -1.25, 3.0], [1e-3, 2.5e5, -0.0]], dtype=torch.float32)
    sd["f16"] = torch.tensor([1.5, -2.0, 0.1, 65504.0], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.5, 1e-20], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([[1.0 / 3.0]], dtype=torch.float64)
    sd["i64"] = torch.tensor([0, -1, 2**40, -(2**62)], dtype=torch.int64)
    sd["i32"] = torch.tensor([7, -8], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = base[:, 1:3].t()  # (2, 3), strides (1, 4), storage offset 1: not contiguous
    sd["row"] = base[1]  # (4,), storage offset 4 in the same storage
    sd["scalar"] = torch.tensor(2.5)  # 0-d
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([0.25, 0.75]))
    sd["nested"] = {"w": torch.tensor([[1.0, 2.0]]), "deeper": {"b": torch.tensor([3], dtype=torch.int16)}}
    sd["epoch"] = 3  # not a tensor: skipped by the loader
    sd["name"] = "test"
    return sd


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    sd = state_dict()
    assert not sd["transposed"].is_contiguous() and sd["transposed"].storage_offset() == 1
    torch.save(sd, OUT / "zip_format.pth")
    torch.save(sd, OUT / "legacy_format.pth", _use_new_zipfile_serialization=False)
    # A top-level tuple (pyiqa's brisque_svm_weights.pth is one): keys "0", "1".
    pair = (torch.tensor([1.0, -1.0], dtype=torch.float64), torch.tensor([[0.5, 0.25]], dtype=torch.float64))
    torch.save(pair, OUT / "tuple_legacy.pt", _use_new_zipfile_serialization=False)
    # {"state_dict": ...} with pickle protocol 1 (no PROTO opcode): keys "state_dict.<key>".
    plain = OrderedDict((k, v) for k, v in sd.items() if isinstance(v, (torch.Tensor, dict)))
    torch.save({"state_dict": plain}, OUT / "nested_protocol1_legacy.pth", pickle_protocol=1,
               _use_new_zipfile_serialization=False)
    # A real module's state_dict(): an OrderedDict carrying `_metadata` (pickled with BUILD) and BatchNorm's int64
    # num_batches_tracked.
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.BatchNorm2d(2))
    torch.save(module.state_dict(), OUT / "module_state_dict.pth")
    for f in sorted(OUT.iterdir()):
        print(f.name, f.stat().st_size)
    for name in ("zip_format.pth", "legacy_format.pth"):
        back = torch.load(OUT / name, weights_only=True)
        assert torch.equal(back["transposed"], sd["transposed"]) and back["transposed"].stride() == (1, 4)


if __name__ == "__main__":
    main()
