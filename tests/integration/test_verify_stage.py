"""The verification stage (playbooks/verify.yml) on the stand-in host: the runtime stage's native x86 build and
the real Q4_K_M model installed by their own stages into a scratch "board", then greedy completions,
perplexity and llama-bench, CPU-only against RKNPU through libnpu's rocket path on the emulated device
(librocket-emu, each job on the software NPU model), and the report. The same stage
on the virtual board, under TCG, is the slow tier (tests/virtual/test_verify_stage.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import NATIVE_RUNTIME, build_runtime, played, real_input, rosenblatt, rosenblatt_ok, run_playbook

LOCAL = "tests/inventory/local"
# Short runs: the software model computes each NPU job on the controller's CPU.
SMALL = {"inference_verify_npu_backend": "rocket-emulated", "inference_verify_tokens": 16,
         "inference_verify_perplexity_chunks": 1, "inference_verify_bench_prompt": 32,
         "inference_verify_bench_generate": 4, "inference_verify_bench_repetitions": 1}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A scratch board on the controller with the runtime and model stages' work done."""
    real_input("gemma-gguf")
    build_runtime(NATIVE_RUNTIME)
    root = tmp_path_factory.mktemp("board")
    variables = {"rosenblatt_state_dir": str(root / "state"), "runtime_install_prefix": str(root / "runtime"),
                 "model_install_dir": str(root / "models")}
    for playbook, extra in (("playbooks/runtime.yml", NATIVE_RUNTIME), ("playbooks/model.yml", {})):
        result = run_playbook("-i", LOCAL, playbook, "-e", json.dumps({**variables, **extra}), timeout=1800)
        assert result.returncode == 0, result.stdout[-4000:]
    return variables


def verify(board: dict[str, str], reports: Path, *extra: str, **variables: object):
    settings = {**board, **SMALL, "rosenblatt_reports_dir": str(reports), **variables}
    return run_playbook("-i", LOCAL, "playbooks/verify.yml", "-e", json.dumps(settings), *extra, timeout=1800)


def latest(reports: Path) -> dict:
    return json.loads((reports / "verify/controller/latest.json").read_text())


def recorded(board: dict[str, str]) -> dict:
    """What the stage recorded on the board for the fleet report."""
    return json.loads((Path(board["rosenblatt_state_dir"]) / "verify.json").read_text())


def cli_verify(board: dict[str, str], reports: Path) -> list[str]:
    """`rosenblatt verify controller` with the same settings."""
    return ["-i", LOCAL, "-e", json.dumps({**board, **SMALL, "rosenblatt_reports_dir": str(reports)}), "verify",
            "controller"]


def test_verification_passes_reports_and_flags_a_regression(board: dict[str, str], reports_dir: Path) -> None:
    outcome = rosenblatt_ok(*cli_verify(board, reports_dir), timeout=1800)
    assert "verification passed; report " + str(reports_dir) in " ".join(played(outcome).split())
    report = latest(reports_dir)
    assert report["ok"] and not report["regressions"]
    description = report["device"]["description"]
    assert description.startswith("EMULATED ROCKET DEVICE (librocket-emu on the software NPU model"), description
    # the device line is the backend's own, from the driver's DRM_IOCTL_VERSION description
    assert "RK3588 NPU via rocket /dev/accel/accel0 (rocket DRM, emulated in userspace" in description
    checks = {check["name"]: check for check in report["checks"]}
    assert {"RKNPU offload (perplexity)", "RKNPU offload (bench)", "greedy agreement RKNPU vs CPU",
            "perplexity RKNPU vs CPU", "llama-bench RKNPU"} <= set(checks)
    assert all(counters["npu_ops"] > 0 and counters["precision"] == "fp16" for counters in report["device"]["counters"])
    assert {(row["config"], row["test"]) for row in report["bench"]} == {
        (config, test) for config in ("CPU", "RKNPU") for test in ("pp32", "tg4")}
    assert "RKNPU" in next(row["backends"] for row in report["bench"] if row["config"] == "RKNPU")
    assert len(report["completions"]["CPU"]) == len(report["completions"]["RKNPU"]) == 2
    assert report["perplexity"]["relative_difference"] <= 0.06
    markdown = (reports_dir / "verify/controller/latest.md").read_text()
    assert "**Result: passed**" in markdown and "## Greedy completions" in markdown
    assert "EMULATED ROCKET DEVICE" in markdown.split("## Checks")[0]
    assert (reports_dir / "verify/controller/latest.svg").read_text().startswith("<svg")
    assert recorded(board) == {"component": "verify", "generated": report["run"], "result": "passed",
                               "report": str(reports_dir / f"verify/controller/{report['run']}.md"),
                               "inputs": recorded(board)["inputs"], "regressions": 0}
    assert len(recorded(board)["inputs"]) == 64  # sha256 of runtime, model, kernel and settings

    # site.yml's setting: the same inputs verified and passed, so nothing runs and no report is added.
    unchanged = verify(board, reports_dir, inference_verify_when_unchanged="skip")
    assert unchanged.returncode == 0, unchanged.stdout[-3000:]
    assert f"nothing to do: verification passed at {report['run']}" in " ".join(unchanged.stdout.split())
    assert not re.search(r"^(ok|changed): \[controller\] => \(item=CPU", unchanged.stdout, re.MULTILINE)
    assert len(list((reports_dir / "verify/controller").glob("2*.json"))) == 1

    # The previous run, made a hundred times faster, makes this one a regression: flagged and the play fails.
    for row in report["bench"]:
        row["tokens_per_s"] *= 100
    (reports_dir / "verify/controller/latest.json").write_text(json.dumps(report))
    second = rosenblatt(*cli_verify(board, reports_dir), timeout=1800)
    assert second.returncode == 1, second.stdout[-3000:]
    assert "regressions against the previous run" in second.stdout
    flagged = latest(reports_dir)
    assert flagged["ok"] and len(flagged["regressions"]) == 4, flagged["regressions"]
    assert "## Regressions against the previous run" in (reports_dir / "verify/controller/latest.md").read_text()
    assert len(list((reports_dir / "verify/controller").glob("2*.json"))) == 2
    assert recorded(board)["result"] == "regressed"


def test_backend_that_cannot_load_fails_the_offload_checks_and_says_why(board: dict[str, str],
                                                                       reports_dir: Path) -> None:
    """rocket on a machine without /dev/accel: the backend refuses to load and llama.cpp runs CPU-only; the
    verification says so rather than passing on the CPU's numbers."""
    result = verify(board, reports_dir, inference_verify_npu_backend="rocket")
    assert result.returncode != 0
    assert "verification failed: RKNPU offload (completion-2)" in result.stdout
    offload = [check for check in latest(reports_dir)["checks"] if check["name"].startswith("RKNPU offload")]
    assert len(offload) == 4 and not any(check["ok"] for check in offload)
    assert "rknpu: not used: no /dev/accel/accel* node driven by rocket" in offload[0]["detail"]
    assert recorded(board)["result"] == "failed"


def test_the_software_model_in_libnpu_passes_and_says_so(board: dict[str, str], reports_dir: Path) -> None:
    result = verify(board, reports_dir, inference_verify_npu_backend="model")
    assert result.returncode == 0, result.stdout[-3000:]
    description = latest(reports_dir)["device"]["description"]
    assert description.startswith("SOFTWARE NPU MODEL (NPU_BACKEND=model"), description
    assert "RK3588 NPU via model in-process (libnpu software NPU model)" in description


@pytest.mark.parametrize(("backend", "plan"), [
    ("rocket-emulated", "rocket through an EMULATED /dev/accel/accel0 (librocket-emu on the software NPU model)"),
    ("model", "the SOFTWARE NPU MODEL"),
])
def test_check_mode_says_what_it_would_load_and_runs_nothing(board: dict[str, str], reports_dir: Path, backend: str,
                                                             plan: str) -> None:
    result = verify(board, reports_dir, "--check", inference_verify_npu_backend=backend)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"would run 8 commands, CPU-only and with RKNPU ({plan})" in " ".join(result.stdout.split())
    assert "gemma-3-270m-q4_k_m.gguf (241.4 MiB)" in " ".join(result.stdout.split())
    assert not (reports_dir / "verify").exists()
    # The stage summary after the recap (callback rosenblatt.pipeline.stage_summary): one line per playbook file.
    stages = result.stdout.split("STAGES ", 1)[1]
    assert re.search(r"^validate\.yml +[\d.]+ s +ok=2 +changed=0 +failed=0", stages, re.MULTILINE), stages
    assert re.search(r"^verify\.yml +[\d.]+ s +ok=\d+ +changed=0 +failed=0 +skipped=\d+$", stages, re.MULTILINE), stages


@pytest.mark.parametrize(("variables", "message"), [
    ({"rosenblatt_state_dir": "/nonexistent/state"},
     "no runtime and model recorded in /nonexistent/state: run the runtime and model stages first"),
    ({"rosenblatt_model_sha256": "0" * 64}, "the pin (rosenblatt_model_sha256) is " + "0" * 64),
    ({"board_shared": True}, "serves other work (board_shared) and has no systemd to cap"),
    ({"inference_verify_npu_backend": "gpu"}, "inference_verify_npu_backend"),
    ({"inference_verify_cpus": "99"}, "inference_verify_cpus '99' is not a CPU list of this board"),
], ids=["not-installed", "other-model", "shared-without-systemd", "bad-backend", "bad-cpus"])
def test_refused_before_anything_runs(board: dict[str, str], reports_dir: Path, variables: dict, message: str) -> None:
    result = verify(board, reports_dir, **variables)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "Complete each prompt greedily" not in result.stdout
    assert not (reports_dir / "verify").exists()
