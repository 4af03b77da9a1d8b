"""The one-operator models the Mesa comparison runs (tests/integration/test_mesa_teflon.py here, and
docs/hardware-validation.md M1 on a board): Mesa's own hardware tests use square inputs of 3 to 112,
1 to 256 channels, kernels 1, 3, 5, strides 1 and 2, SAME and VALID padding (test_teflon.cpp)."""

from __future__ import annotations


def conv(name: str, size: int, channels: int, kernels: int, **options: object) -> dict:
    return {"name": name, "op": "conv", "height": size, "width": size, "in_channels": channels,
            "out_channels": kernels, **options}


MATCHING = [
    conv("1x1 16->32 8x8", 8, 16, 32),
    conv("1x1 8->32 8x8 (channels padded to 16)", 8, 8, 32),
    conv("1x1 120->120 20x20 (a partial kernel group)", 20, 120, 120),
    conv("1x1 256->64 8x8 (the stream compared with libnpu's)", 8, 256, 64),
    conv("1x1 256->128 40x40 (two tasks, WEIGHT_REUSE)", 40, 256, 128),
    conv("3x3 16->32 8x8 SAME", 8, 16, 32, kernel=3, padding="SAME"),
    conv("3x3 32->32 8x8 VALID", 8, 32, 32, kernel=3),
    conv("3x3 16->32 9x9 stride 2 SAME", 9, 16, 32, kernel=3, stride=2, padding="SAME"),
    conv("3x3 8->16 8x8 stride 2 SAME", 8, 8, 16, kernel=3, stride=2, padding="SAME"),
    conv("3x3 120->32 16x16 SAME", 16, 120, 32, kernel=3, padding="SAME"),
    conv("3x3 64->64 32x32 SAME (split into tasks)", 32, 64, 64, kernel=3, padding="SAME"),
    conv("5x5 32->48 12x12 VALID", 12, 32, 48, kernel=5),
    conv("5x5 32->32 11x11 stride 2 SAME", 11, 32, 32, kernel=5, stride=2, padding="SAME"),
]
RELU = conv("3x3 32->32 8x8 fused ReLU", 8, 32, 32, kernel=3, relu=True)
SIGNED = conv("1x1 16->32 8x8 int8", 8, 16, 32, dtype="int8")
NOT_SQUARE = {**conv("3x3 32->32 10x8", 8, 32, 32, kernel=3), "height": 10}
FULLY_CONNECTED = {"name": "fully connected 128->64", "op": "fc", "height": 1, "width": 1, "in_channels": 128,
                   "out_channels": 64}

ALL = [*MATCHING, RELU, SIGNED, NOT_SQUARE, FULLY_CONNECTED]
