# Copyright: rosenblatt developers
# MIT License
"""How the stages that run llama.cpp's programs on a board (verification, bench) run them: which NPU the RKNPU
runs use and how each is named, the environment that loads the backend, the bounds every command runs under,
and what a finished command's return code says. One home for the verification and bench roles (filters in
filter/board_runs.py)."""

from __future__ import annotations

from typing import Any


class RunError(Exception):
    """A setting the runs cannot be made with: the message names it."""


# What each NPU backend choice means: libnpu's backend (NPU_BACKEND), a library the RKNPU runs preload, and how
# the plan and the report name the device (never as the hardware when it is not).
NPU_BACKENDS: dict[str, dict[str, str]] = {
    "rocket": {
        "libnpu_backend": "rocket",
        "preload": "",
        "plan": "rocket, /dev/accel",
        "report_prefix": "",
    },
    "rocket-emulated": {
        "libnpu_backend": "rocket",
        "preload": "librocket-emu.so",
        "plan": "rocket through an EMULATED /dev/accel/accel0 (librocket-emu on the software NPU model)",
        "report_prefix": "EMULATED ROCKET DEVICE (librocket-emu on the software NPU model, chosen in the inventory; "
                         "not the hardware):",
    },
    "model": {
        "libnpu_backend": "model",
        "preload": "",
        "plan": "the SOFTWARE NPU MODEL",
        "report_prefix": "SOFTWARE NPU MODEL (NPU_BACKEND=model, chosen in the inventory; not the hardware):",
    },
}


def npu_backend(name: str) -> dict[str, str]:
    try:
        return NPU_BACKENDS[name]
    except KeyError:
        raise RunError("NPU backend %r is not one of %s" % (name, ", ".join(NPU_BACKENDS))) from None


def rknpu_environment(runtime_path: str, backend: str) -> dict[str, str]:
    """The environment that loads the RKNPU backend of the runtime at `runtime_path` on the chosen NPU."""
    chosen = npu_backend(backend)
    environment = {"GGML_BACKEND_PATH": runtime_path + "/lib/libggml-rknpu.so", "NPU_BACKEND": chosen["libnpu_backend"]}
    if chosen["preload"]:
        environment["LD_PRELOAD"] = runtime_path + "/lib/" + chosen["preload"]
    return environment


def command_bounds(seconds: int, memory_mib: int, systemd: bool, nice: int, cpus: str) -> list[str]:
    """The argv prefix every command runs under: a deadline, a memory cap when systemd can set one (a scope with
    MemoryMax and no swap), a lower priority, and the chosen CPUs (empty: all)."""
    bounds = ["timeout", "--kill-after=10", str(seconds)]
    if systemd:
        bounds += ["systemd-run", "--scope", "--quiet", "-p", "MemoryMax=%dM" % memory_mib, "-p", "MemorySwapMax=0"]
    bounds += ["nice", "-n", str(nice)]
    return bounds + (["taskset", "-c", cpus] if cpus else [])


def command_outcome(result: dict[str, Any], seconds: int, memory_mib: int) -> dict[str, Any]:
    """What a bounded command's registered result says: {ok, detail}, naming the deadline or the memory cap when
    one of them stopped it."""
    rc = result.get("rc")
    if rc == 0:
        return {"ok": True, "detail": "ok in %s" % result.get("delta", "?")}
    if rc == 124:
        detail = "stopped by the deadline of %d s" % seconds
    elif rc in (137, -9):
        detail = "killed (rc %s; the memory cap is %d MiB)" % (rc, memory_mib)
    else:
        lines = result.get("stderr_lines") or [result.get("msg", "")]
        detail = "rc %s: %s" % (rc, " / ".join(str(line) for line in lines[-3:]))
    return {"ok": False, "detail": detail}
