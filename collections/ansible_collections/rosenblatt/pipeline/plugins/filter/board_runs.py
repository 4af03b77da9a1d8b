# Copyright: rosenblatt developers
# MIT License
"""Filters for running llama.cpp's programs on a board, one home for the stages that do (module_utils/board_runs.py):
- `backend | rosenblatt.pipeline.npu_backend` is the NPU choice's descriptor (libnpu backend, preload, plan, report
  prefix);
- `runtime_path | rosenblatt.pipeline.rknpu_environment(backend)` the environment that loads the RKNPU backend;
- `seconds | rosenblatt.pipeline.command_bounds(memory_mib=, systemd=, nice=, cpus=)` the argv prefix of a bounded
  command;
- `registered | rosenblatt.pipeline.command_outcome(seconds=, memory_mib=)` what a bounded command's result says;
- `settings | rosenblatt.pipeline.bench_plan` the board bench's commands (module_utils/board_bench.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import board_bench, board_runs
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import ReportError


def npu_backend(name: str) -> dict[str, str]:
    try:
        return board_runs.npu_backend(name)
    except board_runs.RunError as exc:
        raise AnsibleFilterError(str(exc)) from None


def rknpu_environment(runtime_path: str, backend: str) -> dict[str, str]:
    try:
        return board_runs.rknpu_environment(runtime_path, backend)
    except board_runs.RunError as exc:
        raise AnsibleFilterError(str(exc)) from None


def command_bounds(seconds: Any, memory_mib: Any, systemd: Any, nice: Any, cpus: str) -> list[str]:
    return board_runs.command_bounds(int(seconds), int(memory_mib), bool(systemd), int(nice), cpus or "")


def command_outcome(result: dict[str, Any], seconds: Any, memory_mib: Any) -> dict[str, Any]:
    return board_runs.command_outcome(result, int(seconds), int(memory_mib))


def bench_plan(settings: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return board_bench.plan(settings)
    except (ReportError, board_runs.RunError) as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"npu_backend": npu_backend, "rknpu_environment": rknpu_environment, "command_bounds": command_bounds,
                "command_outcome": command_outcome, "bench_plan": bench_plan}
