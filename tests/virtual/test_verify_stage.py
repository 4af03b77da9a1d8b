"""The runtime, model and verification stages on the virtual board (slow tier: TCG runs the A76 code and the
software NPU model some ten times slower than the controller): the cross-built llama.cpp and ggml-rknpu
installed and verified on the board, the model copied and verified there, then `rosenblatt verify`."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CACHE, played, real_input, rosenblatt_ok

from .conftest import INVENTORY, VirtualBoard


def recap(output: str, host: str) -> str:
    return next(line for line in output.rsplit("PLAY RECAP", maxsplit=1)[-1].splitlines() if line.startswith(host))


@pytest.mark.slow
def test_verification_on_the_virtual_board(virtual_board: VirtualBoard, tmp_path) -> None:
    real_input("gemma-gguf")
    real_input("llama-cpp-sdist")
    for playbook in ("playbooks/runtime.yml", "playbooks/model.yml"):
        first = virtual_board.playbook(playbook, timeout=5400)
        assert first.returncode == 0, first.stdout[-5000:]
        again = virtual_board.playbook(playbook, timeout=1800)
        assert again.returncode == 0 and "changed=0" in recap(again.stdout, virtual_board.host), again.stdout[-3000:]

    reports = tmp_path / "reports"
    outcome = rosenblatt_ok("-i", INVENTORY, "-e", f"rosenblatt_reports_dir={reports}", "verify", virtual_board.host,
                            timeout=5400)
    text = " ".join(played(outcome).split())
    print(text[text.find("runs 8 commands"):][:900])
    report = json.loads((reports / "verify" / virtual_board.host / "latest.json").read_text())
    print((reports / "verify" / virtual_board.host / "latest.md").read_text())
    assert report["ok"], report["checks"]
    # libnpu's rocket path, as on boltzmann, against the emulated device; the report's device line says so
    assert report["device"]["description"].startswith("EMULATED ROCKET DEVICE (librocket-emu")
    assert "via rocket /dev/accel/accel0 (rocket DRM, emulated in userspace" in report["device"]["description"]
    assert report["board"]["model"] and report["board"]["kernel"] and report["board"]["threads"] >= 1
    assert report["board"]["kernel"] == virtual_board.command("uname", "-r").strip()
    assert all(counters["npu_ops"] > 0 for counters in report["device"]["counters"])
    assert {row["config"] for row in report["bench"]} == {"CPU", "RKNPU"}
    assert "memory capped at 1536 MiB" in text  # systemd on the board: every command in a scope
    assert str(CACHE) not in report["runtime"]["path"]  # the board's own install, not the controller's
    # npu-probe on the board through the same rocket path, each core's self-test GEMM on the emulated device
    runtime = report["runtime"]["path"]
    probe = json.loads(virtual_board.command("env", f"LD_PRELOAD={runtime}/lib/librocket-emu.so", "NPU_BACKEND=rocket",
                                             f"{runtime}/bin/npu-probe", "--json", timeout=900))
    assert probe["ok"] and probe["backend"] == "rocket" and len(probe["cores"]) == 3, probe
    assert probe["driver"]["desc"].startswith("rocket DRM, emulated in userspace"), probe["driver"]
