"""Mesa's rocket driver on our software NPU model: Debian sid's libteflon.so (Mesa's TFLite delegate, whose
rocket driver runs int8 convolutions on real RK3588 NPUs through the same UAPI as libnpu), loaded by TFLite's
own runtime (ai-edge-litert) in an arm64 root under qemu-aarch64, over the emulated rocket device. Each
model is built here from TFLite's schema, and the delegate's output is compared with TFLite's CPU kernels.
Where Mesa's stream is one the hardware ran (its CI: square inputs, uint8), the model must agree with
TFLite as closely as Mesa's own hardware tests require; where Mesa is known to do something else, the test
checks that it is exactly that. docs/npu-registers.md, "Mesa's streams on the model", says why for each."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CACHE, REPO, real_input
from tests.mesa.teflon_cases import ALL, FULLY_CONNECTED, MATCHING, NOT_SQUARE, RELU, SIGNED

GOLDEN = REPO / "userspace/tests/golden/int8_m64_n64_k256.regcmd"
DOCS = REPO / "docs/npu-registers.md"
# Mesa's own hardware tests accept 2 (TOLERANCE in src/gallium/targets/teflon/test_teflon.cpp); the model
# stays within 1 and exact on 99 % of the outputs (its 16-bit OUT_CVT_SCALE against TFLite's 31-bit multiplier).
TOLERANCE = 1
EXACT_SHARE = 0.99


@pytest.fixture(scope="module")
def teflon() -> Path:
    return real_input("teflon-runtime")


@pytest.fixture(scope="module")
def emulator() -> Path:
    """librocket-emu.so for arm64, built from this tree with the cross compiler."""
    build = CACHE / "build" / f"rocket-emu-aarch64-{hashlib.sha256(str(REPO).encode()).hexdigest()[:12]}"
    subprocess.run(["cmake", "-S", str(REPO / "userspace"), "-B", str(build), "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    f"-DCMAKE_TOOLCHAIN_FILE={REPO / 'userspace/cmake/aarch64-linux-gnu.cmake'}"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "rocket-emu"], check=True, capture_output=True)
    return build / "librocket-emu.so"


def run_teflon(teflon: Path, emulator: Path, cases: list[dict], cwd: Path,
               environment: dict[str, str] | None = None) -> dict[str, dict]:
    manifest = json.loads((teflon / "manifest.json").read_text())
    root = teflon / "root"
    variables = {"PYTHONHOME": str(root / "usr"), "PYTHONPATH": f"{root / manifest['site']}:{REPO / 'tests/mesa'}",
                 "LD_PRELOAD": str(emulator), **(environment or {})}
    command = [str(teflon / "qemu-aarch64"), "-L", str(root)]
    for name, value in variables.items():
        command += ["-E", f"{name}={value}"]
    command += [str(root / manifest["python"]), str(REPO / "tests/mesa/teflon_run.py"),
                str(root / manifest["teflon"]), json.dumps(cases)]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("ROCKET_", "LD_PRELOAD"))}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=cwd, env=clean, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(cases), result.stdout[-3000:] + result.stderr[-3000:]
    return {row["name"]: {**row, "log": result.stderr} for row in rows}


def test_mesa_convolutions_on_the_model_agree_with_tflite(teflon: Path, emulator: Path, tmp_path: Path) -> None:
    results = run_teflon(teflon, emulator, ALL, tmp_path)
    log = next(iter(results.values()))["log"]
    assert "rocket-emu:" not in log, log[-3000:]  # no stream refused, no job reset
    for case in MATCHING:
        row = results[case["name"]]
        share = row["exact"] / row["outputs"]
        print(f"{case['name']}: {row['exact']}/{row['outputs']} exact, max difference {row['max_difference']}")
        assert row["delegated"], row
        assert row["max_difference"] <= TOLERANCE and share >= EXACT_SHARE, row
        if "model_vs_mesa_formula" in row:
            # Where numpy can compute it (1x1), the model gives exactly Mesa's arithmetic, and every output
            # that differs from TFLite differs because of the 16-bit scale: with the exact multiplier, none do.
            assert row["model_vs_mesa_formula"] == 0, row
            assert row["mesa_formula_vs_tflite"] == row["outputs"] - row["exact"], row
            assert row["exact_multiplier_vs_tflite"] <= 1, row  # a tie rounded the other way
            print(f"  (Mesa's arithmetic in numpy: the same outputs; with the exact multiplier "
                  f"{row['exact_multiplier_vs_tflite']} differ from TFLite)")
    # Mesa 26.2 ignores a fused ReLU (BS_RELU_BYPASS=1, nothing else clamps): with the clamp applied
    # afterwards the outputs agree, and without it they do not.
    relu = results[RELU["name"]]
    assert relu["delegated"] and relu["max_difference"] > TOLERANCE >= relu["max_difference_relu_applied"], relu
    # Signed int8 models are delegated but computed as uint8 (Mesa's tests run only is_signed false).
    signed = results[SIGNED["name"]]
    assert signed["delegated"] and signed["max_difference"] > TOLERANCE, signed
    # A non-square input: Mesa names TFLite's height as the NPU's width (below), so nothing agrees.
    assert results[NOT_SQUARE["name"]]["max_difference"] > TOLERANCE, results[NOT_SQUARE["name"]]
    assert not results[FULLY_CONNECTED["name"]]["delegated"]  # Mesa's rocket driver takes no FULLY_CONNECTED
    print(f"Mesa cases: {len(MATCHING)} run and matched; 4 run with the difference Mesa's own code explains")


def registers(words: list[tuple[int, int, int]]) -> dict[int, int]:
    """Register -> value of a stream of (target, register, value), the tail (PC, marker, op_en) left out."""
    return {reg: value for target, reg, value in words if target and reg >> 12}


def mesa_stream(dump: Path) -> list[tuple[int, int, int]]:
    data = (dump / "mesa-regcmd-000-000.bin").read_bytes()
    return [(word >> 48, word & 0xffff, (word >> 16) & 0xffffffff)
            for word in struct.unpack(f"<{len(data) // 8}Q", data)]


def golden_stream() -> list[tuple[int, int, int]]:
    words = []
    for line in GOLDEN.read_text().splitlines():
        fields = line.split("#")[0].split()
        if len(fields) >= 3:
            words.append(tuple(int(field, 16) for field in fields[:3]))
    return words


def documented_differences() -> list[tuple[int, int]]:
    """The register ranges (first, last) docs/npu-registers.md lists in its table of Mesa's 1x1 stream
    against libnpu's; a single register is a range of one."""
    section = DOCS.read_text().split("### Mesa's 1x1 convolution against libnpu's GEMM", 1)[1].split("\n## ", 1)[0]
    return [(int(first, 16), int(last or first, 16))
            for first, last in re.findall(r"^\| 0x([0-9a-f]{4})(?:-0x([0-9a-f]{4}))? \|", section, re.MULTILINE)]


def test_mesa_1x1_stream_differs_from_libnpus_only_where_the_docs_say(teflon: Path, emulator: Path,
                                                                     tmp_path: Path) -> None:
    """The same operation both ways: a 1x1 convolution of an 8x8 map, 256 channels to 64 (Mesa), is libnpu's
    INT8 GEMM M=64 N=64 K=256 (the golden stream). Every register that differs has its reason in the docs."""
    [case] = [case for case in MATCHING if case["name"].startswith("1x1 256->64")]
    run_teflon(teflon, emulator, [case], tmp_path, {"ROCKET_DEBUG": "dump_bos"})
    mesa, libnpu = registers(mesa_stream(tmp_path)), registers(golden_stream())
    differing = {reg for reg in mesa.keys() | libnpu.keys() if mesa.get(reg) != libnpu.get(reg)}
    for reg in sorted(differing):
        print(f"0x{reg:04x}: libnpu {libnpu.get(reg)!r} Mesa {mesa.get(reg)!r}")
    documented = documented_differences()
    undocumented = [reg for reg in differing if not any(first <= reg <= last for first, last in documented)]
    equal = [(first, last) for first, last in documented if not any(first <= reg <= last for reg in differing)]
    assert not undocumented, f"differ but not in the docs: {[hex(reg) for reg in sorted(undocumented)]}"
    assert not equal, f"in the docs but equal: {[(hex(first), hex(last)) for first, last in equal]}"
