"""Runs quantized one-operator TFLite models through TFLite's CPU kernels and through Mesa's Teflon
delegate (Mesa's rocket driver) and prints one JSON line per case: how the two outputs compare and
whether Teflon delegated the operator. Runs in the aarch64 environment the test prepares (Debian's
libteflon.so, ai-edge-litert), over whatever rocket device the process sees: the test preloads the
emulated one; on a board, nothing is preloaded and the NPU is real. Usage: teflon_run.py LIBTEFLON
[CASES_JSON], every case of teflon_cases.py without CASES_JSON."""

from __future__ import annotations

import json
import struct
import sys
import time
from dataclasses import asdict

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate
from teflon_cases import ALL
from tflite_models import Case, build, input_for

SEED = 4  # Mesa's own tests seed their models with 4 (test_teflon.cpp)


def _run(model: bytes, case: Case, delegates: list) -> tuple[np.ndarray, int, int]:
    """The output, its zero point, and how many delegate nodes the interpreter's plan holds."""
    interpreter = Interpreter(model_content=model, experimental_delegates=delegates,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], input_for(case, SEED))
    interpreter.invoke()
    details = interpreter.get_output_details()[0]
    output = interpreter.get_tensor(details["index"]).copy()
    ops = interpreter._get_ops_details()  # the public API has no other view of the plan
    return output, int(details["quantization"][1]), sum(1 for op in ops if op["op_name"] == "DELEGATE")


def requantized_1x1(model: bytes, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """A 1x1 convolution's outputs computed in numpy two ways from the model's own tensors: with Mesa's
    16-bit OUT_CVT_SCALE and OUT_CVT_SHIFT (rkt_regcmd.c: scale = ((bits >> 9) & 0x7fff) + 1 with bit 14 set,
    shift = 142 - exponent - 1, rounded half up), and with the exact real multiplier, rounded the same way."""
    parsed = schema.ModelT.InitFromPackedBuf(model, 0)
    tensors = parsed.subgraphs[0].tensors
    (s_in, z_in), (s_w, z_w), (s_out, z_out) = ((tensors[i].quantization.scale[0], tensors[i].quantization.zeroPoint[0])
                                                 for i in (0, 1, 3))
    weights = np.frombuffer(bytes(parsed.buffers[1].data), np.uint8).reshape(case.out_channels, -1).astype(np.int64)
    bias = np.frombuffer(bytes(parsed.buffers[2].data), np.int32).astype(np.int64)
    sums = (input_for(case, SEED).reshape(-1, case.in_channels).astype(np.int64) - z_in) @ (weights - z_w).T + bias
    bits = struct.unpack("<I", struct.pack("<f", np.float32(np.float32(s_in) * np.float32(s_w) / np.float32(s_out))))[0]
    shift, scale = 142 - (bits >> 23) - 1, ((bits >> 9) & 0x7FFF) + 1
    if scale < 1 << 14:
        scale |= 1 << 14
    mesa = np.clip(((sums * scale + (1 << (shift - 1))) >> shift) + z_out, 0, 255)
    exact = np.clip(np.floor(sums * (np.float64(s_in) * np.float64(s_w) / np.float64(s_out)) + 0.5) + z_out, 0, 255)
    return mesa, exact


def main() -> int:
    library = sys.argv[1]
    cases = json.loads(sys.argv[2]) if len(sys.argv) > 2 else ALL
    delegate = load_delegate(library)
    for fields in cases:
        case = Case(**fields)
        model = build(case, SEED)
        reference, zero_point, _ = _run(model, case, [])
        start = time.monotonic()
        npu, _, delegated = _run(model, case, [delegate])
        seconds = time.monotonic() - start
        difference = np.abs(reference.astype(np.int32) - npu.astype(np.int32))
        # The fused ReLU applied afterwards, as TFLite applies it: clamping at the output's zero point.
        clamped = np.abs(reference.astype(np.int32) - np.maximum(npu.astype(np.int32), zero_point))
        formulas = {}
        if case.op == "conv" and case.kernel == 1 and case.stride == 1 and case.dtype == "uint8":
            mesa, exact = requantized_1x1(model, case)
            flat_npu, flat_reference = npu.reshape(mesa.shape), reference.reshape(mesa.shape)
            formulas = {"model_vs_mesa_formula": int((flat_npu != mesa).sum()),
                        "mesa_formula_vs_tflite": int((mesa != flat_reference).sum()),
                        "exact_multiplier_vs_tflite": int((exact != flat_reference).sum())}
        print(json.dumps({
            **asdict(case), **formulas, "delegated": delegated == 1, "outputs": int(reference.size),
            "exact": int((difference == 0).sum()), "max_difference": int(difference.max()),
            "max_difference_relu_applied": int(clamped.max()),
            "seconds": round(seconds, 3),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
