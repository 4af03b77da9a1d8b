# Copyright: rosenblatt developers
# MIT License
"""The drift report: per board, what runs and what the stages installed, against the group's pinned versions.

Input per host: the probe facts (`rknpu`, `board`), the recorded state (`rosenblatt_state`), and the pins that
apply to that host (`rosenblatt_kernel_tag`, `rosenblatt_llama_cpp_ref`, `rosenblatt_model_sha256`).
A board is `in-sync` when every pinned component is installed at its pinned version and it runs the
kernel that was installed, `drift` otherwise (each difference is listed), `unreachable` when it could not
be probed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PINS = ("rosenblatt_kernel_tag", "rosenblatt_llama_cpp_ref", "rosenblatt_model_sha256")


def _short(digest: Any) -> str:
    return str(digest)[:12] if digest else "-"


def drift_of(running_release: str | None, components: Mapping[str, Any], pins: Mapping[str, Any]) -> list[str]:
    """Every way this board differs from its pins, in words a person can act on."""
    differences = []
    kernel = components.get("kernel")
    if kernel is None:
        differences.append("kernel: not installed by rosenblatt (pinned %s)" % pins["rosenblatt_kernel_tag"])
    else:
        if kernel.get("source_ref") != pins["rosenblatt_kernel_tag"]:
            differences.append("kernel: built from %s (pinned %s)"
                               % (kernel.get("source_ref"), pins["rosenblatt_kernel_tag"]))
        if running_release and kernel.get("release") != running_release:
            differences.append("kernel: running %s, installed %s" % (running_release, kernel.get("release")))
    runtime = components.get("runtime")
    if runtime is None:
        differences.append("runtime: not installed (pinned llama.cpp %s)" % pins["rosenblatt_llama_cpp_ref"])
    elif runtime.get("llama_cpp_ref") != pins["rosenblatt_llama_cpp_ref"]:
        differences.append("runtime: llama.cpp %s (pinned %s)"
                           % (runtime.get("llama_cpp_ref"), pins["rosenblatt_llama_cpp_ref"]))
    model = components.get("model")
    if model is None:
        differences.append("model: not installed (pinned sha256 %s)" % _short(pins["rosenblatt_model_sha256"]))
    elif model.get("sha256") != pins["rosenblatt_model_sha256"]:
        differences.append("model: sha256 %s (pinned %s)"
                           % (_short(model.get("sha256")), _short(pins["rosenblatt_model_sha256"])))
    return differences


def drift_row(host: str, model: str, facts: Mapping[str, Any], pins: Mapping[str, Any]) -> dict[str, Any]:
    """One board's row. `facts` holds what this run learned of it: rknpu, board, rosenblatt_state (or nothing)."""
    rknpu, state = facts.get("rknpu"), facts.get("rosenblatt_state")
    if rknpu is None or state is None:
        return {"host": host, "model": model, "status": "unreachable", "drift": [], "problems": []}
    components = state.get("components", {})
    kernel, runtime = components.get("kernel", {}), components.get("runtime", {})
    verification = components.get("verify", {})
    differences = drift_of(rknpu.get("kernel_release"), components, pins)
    return {
        "host": host,
        "model": model,
        "status": "drift" if differences else "in-sync",
        "kernel_release": rknpu.get("kernel_release"),
        "kernel_artifact": kernel.get("artifact_sha256"),
        "llama_cpp": runtime.get("llama_cpp_ref"),
        "backend": runtime.get("backend_version"),
        "model_sha256": components.get("model", {}).get("sha256"),
        "npu_verdict": rknpu.get("verdict"),
        "npu_message": rknpu.get("message"),
        "boot_chain": facts.get("board", {}).get("boot_chain"),
        "verification": verification.get("result"),
        "verification_time": verification.get("generated"),
        "drift": differences,
        "problems": state.get("problems", []),
    }


def fleet_drift(hosts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows for every host (each a mapping: host, model, facts, pins) and the counts per status."""
    rows = [drift_row(h["host"], h["model"], h["facts"], {pin: h["pins"].get(pin) for pin in PINS}) for h in hosts]
    counts = {status: sum(row["status"] == status for row in rows) for status in ("in-sync", "drift", "unreachable")}
    return {"hosts": rows, "counts": counts}
