"""Quantized TFLite models built from TFLite's own schema (the `schema_py_generated` module that ai-edge-litert
ships), without TensorFlow: one operator per model, seeded random weights, the quantization a converter
would write (bias scale = input scale x weight scale, zero point 0)."""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


@dataclass(frozen=True)
class Case:
    """One operator: CONV_2D (kernel x kernel, stride, SAME or VALID padding) or FULLY_CONNECTED."""

    name: str
    op: str  # "conv" or "fc"
    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int = 1
    stride: int = 1
    padding: str = "VALID"
    relu: bool = False
    dtype: str = "uint8"  # the model's activation and weight type

    @property
    def input_shape(self) -> list[int]:
        if self.op == "fc":
            return [self.height, self.in_channels]
        return [1, self.height, self.width, self.in_channels]


def _info(dtype: str) -> tuple[int, int, int, type]:
    """TFLite tensor type, the range of the type and its numpy type."""
    if dtype == "uint8":
        return schema.TensorType.UINT8, 0, 255, np.uint8
    if dtype == "int8":
        return schema.TensorType.INT8, -128, 127, np.int8
    raise ValueError(f"dtype {dtype!r}: uint8 or int8")


def _tensor(name: str, shape: list[int], kind: int, buffer: int, *, scale: float, zero_point: int) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.type, tensor.buffer = name, shape, kind, buffer
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [zero_point]
    return tensor


def _buffer(data: np.ndarray | None) -> schema.BufferT:
    buffer = schema.BufferT()
    if data is not None:
        buffer.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
    return buffer


def build(case: Case, seed: int) -> bytes:
    """The flatbuffer of a one-operator model for `case`, weights and quantization drawn from `seed`."""
    rng = np.random.default_rng(seed)
    kind, low, high, numpy_type = _info(case.dtype)
    in_scale, w_scale = float(rng.uniform(0.01, 0.05)), float(rng.uniform(0.002, 0.02))
    # Zero points near the middle of the range, where a calibrated converter puts them for centred data, so
    # the sums spread about zero instead of saturating.
    middle = (low + high + 1) // 2
    in_zp, w_zp = (int(rng.integers(middle - 8, middle + 9)) for _ in range(2))
    if case.dtype == "int8":
        w_zp = 0  # TFLite's int8 weights are symmetric
    depth = case.kernel * case.kernel * case.in_channels
    # An output scale that keeps most sums inside the 8-bit range, as a calibrated converter would choose: each
    # product of two uniform 8-bit values about their zero points has a spread of about 74 x 74.
    out_scale = in_scale * w_scale * 74.0 * 74.0 * float(np.sqrt(depth)) * 6.0 / (high - low)
    out_zp = int(rng.integers(middle - 24, middle + 25))
    if case.op == "conv":
        weight_shape = [case.out_channels, case.kernel, case.kernel, case.in_channels]
        out_h = _out_size(case.height, case.kernel, case.stride, case.padding)
        out_w = _out_size(case.width, case.kernel, case.stride, case.padding)
        output_shape = [1, out_h, out_w, case.out_channels]
    else:
        weight_shape = [case.out_channels, case.in_channels]
        output_shape = [case.height, case.out_channels]
    weights = rng.integers(low, high + 1, size=weight_shape).astype(numpy_type)
    bias = rng.integers(-3000, 3000, size=[case.out_channels]).astype(np.int32)

    tensors = [
        _tensor("input", case.input_shape, kind, 0, scale=in_scale, zero_point=in_zp),
        _tensor("weights", weight_shape, kind, 1, scale=w_scale, zero_point=w_zp),
        _tensor("bias", [case.out_channels], schema.TensorType.INT32, 2, scale=in_scale * w_scale, zero_point=0),
        _tensor("output", output_shape, kind, 0, scale=out_scale, zero_point=out_zp),
    ]
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, 1, 2], [3]
    activation = schema.ActivationFunctionType.RELU if case.relu else schema.ActivationFunctionType.NONE
    code = schema.OperatorCodeT()
    if case.op == "conv":
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CONV_2D
        options = schema.Conv2DOptionsT()
        options.padding = getattr(schema.Padding, case.padding)
        options.strideW = options.strideH = case.stride
        options.dilationWFactor = options.dilationHFactor = 1
        options.fusedActivationFunction = activation
        operator.builtinOptionsType, operator.builtinOptions = schema.BuiltinOptions.Conv2DOptions, options
    else:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = activation
        options.weightsFormat = schema.FullyConnectedOptionsWeightsFormat.DEFAULT
        operator.builtinOptionsType, operator.builtinOptions = schema.BuiltinOptions.FullyConnectedOptions, options
    code.version = 1

    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = tensors, [0], [3], [operator]
    model = schema.ModelT()
    model.version, model.description = 3, f"rosenblatt test model {case.name}"
    model.operatorCodes, model.subgraphs = [code], [subgraph]
    model.buffers = [_buffer(None), _buffer(weights), _buffer(bias)]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _out_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def input_for(case: Case, seed: int) -> np.ndarray:
    """Seeded random input in the model's activation type."""
    _, low, high, numpy_type = _info(case.dtype)
    return np.random.default_rng(seed + 1).integers(low, high + 1, size=case.input_shape).astype(numpy_type)
