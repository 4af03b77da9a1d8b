"""Runs quantized one-operator TFLite models through TFLite's CPU kernels and through Mesa's Teflon
delegate (Mesa's rocket driver) and prints one JSON line per case: how the two outputs compare and
whether Teflon delegated the operator. Runs in the aarch64 environment the test prepares (Debian's
libteflon.so, ai-edge-litert), over whatever rocket device the process sees: the test preloads the
emulated one; on a board, nothing is preloaded and the NPU is real. Usage: teflon_run.py LIBTEFLON
[CASES_JSON], every case of teflon_cases.py without CASES_JSON."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

import numpy as np
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
        print(json.dumps({
            **asdict(case), "delegated": delegated == 1, "outputs": int(reference.size),
            "exact": int((difference == 0).sum()), "max_difference": int(difference.max()),
            "max_difference_relu_applied": int(clamped.max()),
            "seconds": round(seconds, 3),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
