"""Tiny TorchScript modules for tests/torchscript.rs (the contract's loading, arity and sidecar rules).

Usage: make_torchscript_fixtures.py OUT_DIR. Writes, with sidecars where the name says so:
  brightness.pt/.json  NR: mean pixel value per image
  absdiff.pt/.json     FR: mean absolute difference per pair, shape [N, 1]
  one_arg_fr.pt/.json  forward(x) described as FR in its sidecar (wrong arity)
  two_arg_nr.pt        forward(x, y) (wrong arity for NR; no sidecar: not listed)
  orphan.pt            a valid NR module without a sidecar (not listed)
  bad_sidecar.pt/.json a valid module whose sidecar says mode "XX"
  not_a_module.pt/.json  a text file
"""
import json
import pathlib
import sys

import torch


class Brightness(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=[1, 2, 3])


class AbsDiff(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # A buffer, so that device and dtype conversion of the module are exercised.
        self.register_buffer('scale', torch.ones(1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((x - y).abs().mean(dim=[1, 2, 3]) * self.scale).unsqueeze(1)


def save(module, out, name, sidecar):
    torch.jit.script(module).save(str(out / f'{name}.pt'))
    if sidecar is not None:
        (out / f'{name}.json').write_text(json.dumps(sidecar))


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    save(Brightness(), out, 'brightness', {'mode': 'NR', 'lower_better': False, 'score_range': [0.0, 1.0]})
    save(AbsDiff(), out, 'absdiff', {'mode': 'FR', 'lower_better': True})
    save(Brightness(), out, 'one_arg_fr', {'mode': 'FR', 'lower_better': True})
    save(AbsDiff(), out, 'two_arg_nr', None)
    save(Brightness(), out, 'orphan', None)
    save(Brightness(), out, 'bad_sidecar', {'mode': 'XX'})
    (out / 'not_a_module.pt').write_text('this is not a zip archive\n')
    (out / 'not_a_module.json').write_text(json.dumps({'mode': 'NR'}))


if __name__ == '__main__':
    main()
