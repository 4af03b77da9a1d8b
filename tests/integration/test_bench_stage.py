"""The bench stage (playbooks/bench.yml, `rosenblatt bench`) on the stand-in host: its plan and refusals on a
scratch board whose state records name a runtime and a model, then (with the runtime stage's native x86 build and
the real Q4_K_M model, as tests/integration/test_verify_stage.py installs them) the whole bench at tiny sizes on
the software NPU model, its report and the comparison with the previous run. Not run on the virtual board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import played, rosenblatt, rosenblatt_ok, run_playbook
from tests.integration.test_verify_stage import LOCAL, board  # noqa: F401 (the installed scratch board fixture)

# Tiny sizes: the software model computes each NPU job on the controller's CPU. Prompts of 32 tokens, so the
# default GGML_RKNPU_MIN_BATCH of 32 puts the prefill on the NPU.
TINY = {"board_bench_npu_backend": "model", "board_bench_int8_groups": [256], "board_bench_min_batches": [8, 32],
        "board_bench_wave_rows": [8],
        "board_bench_prompt": 32, "board_bench_generate": 4, "board_bench_repetitions": 1,
        "board_bench_sweep_repetitions": 1, "board_bench_perplexity_chunks": 1, "board_bench_op_test_precisions": []}


@pytest.fixture
def recorded_board(tmp_path: Path) -> dict[str, str]:
    """A scratch board whose state records name a runtime and a model (nothing installed: enough for --check)."""
    state, model = tmp_path / "state", tmp_path / "model.gguf"
    state.mkdir()
    model.write_bytes(b"\0" * 1048576)
    (state / "runtime.json").write_text(json.dumps({"component": "runtime", "path": "/opt/rt", "llama_cpp_ref": "abc",
                                                    "input_hash": "0" * 64}))
    (state / "model.json").write_text(json.dumps({"component": "model", "path": str(model), "sha256": "1" * 64}))
    return {"rosenblatt_state_dir": str(state), "rosenblatt_model_sha256": "1" * 64}


def cli_bench(variables: dict[str, object], *options: str) -> list[str]:
    return ["-i", LOCAL, *options, "-e", json.dumps(variables), "bench", "controller"]


def test_check_prints_the_plan_and_runs_nothing(recorded_board: dict[str, str], reports_dir: Path) -> None:
    outcome = rosenblatt_ok(*cli_bench({**recorded_board, "rosenblatt_reports_dir": str(reports_dir)}, "--check"))
    text = " ".join(played(outcome).split())
    assert ("controller: would run 32 commands, RKNPU on rocket, /dev/accel (board figures); configurations CPU, "
            "RKNPU FP16, RKNPU INT8 per-row, RKNPU INT8 g128, RKNPU INT8 g256, RKNPU INT8 g512; MIN_BATCH sweep "
            "1 4 8 16 32 64; wave sweep 32 64 128 256 512; pp512/tg128 x3, sweep x2, perplexity context 64 "
            "(all chunks)") in text
    assert "each command stopped after 900 s" in text and "threads on CPUs all, nice 10" in text
    assert ("sweep RKNPU FP16 ub8: GGML_BACKEND_PATH=/opt/rt/lib/libggml-rknpu.so NPU_BACKEND=rocket "
            "GGML_RKNPU_PRECISION=fp16 GGML_RKNPU_MIN_BATCH=8 GGML_RKNPU_STATS=<work folder>/sweep-14.json "
            "/opt/rt/bin/llama-bench -m") in text
    assert "op-test RKNPU INT8: GGML_BACKEND_PATH" in text and "npu-probe NPU:" in text
    assert not (reports_dir / "bench").exists()


def test_check_on_the_software_model_says_not_board_figures(recorded_board: dict[str, str],
                                                            reports_dir: Path) -> None:
    outcome = rosenblatt_ok(*cli_bench({**recorded_board, **TINY, "rosenblatt_reports_dir": str(reports_dir)},
                                       "--check"))
    text = " ".join(played(outcome).split())
    assert "would run 12 commands, RKNPU on the SOFTWARE NPU MODEL (NOT BOARD FIGURES)" in text


@pytest.mark.parametrize(("variables", "message"), [
    ({"board_bench_int8_groups": [0, 100]}, "INT8 K groups (board_bench_int8_groups) [100]: each must be 0 or a "
                                            "multiple of 32 from 32 to 4096"),
    ({"board_bench_min_batches": [8, 1024]}, "MIN_BATCH sweep values (board_bench_min_batches) [1024]"),
    ({"board_bench_wave_rows": [64, 1024]}, "wave sweep values (board_bench_wave_rows) [1024]: each must be from 1 "
                                            "to the prompt length 512"),
    ({"board_bench_cpus": "99"}, "board_bench_cpus '99' is not a CPU list of this board"),
    ({"board_shared": True}, "board_shared is true and this stage changes the board: re-run with "
                             "-e rosenblatt_confirm=controller"),
], ids=["bad-group", "bad-batch", "bad-wave", "bad-cpus", "shared-unconfirmed"])
def test_refused_before_anything_runs(recorded_board: dict[str, str], reports_dir: Path, variables: dict,
                                      message: str) -> None:
    result = run_playbook("-i", LOCAL, "playbooks/bench.yml", "-e",
                          json.dumps({**recorded_board, "rosenblatt_reports_dir": str(reports_dir), **variables}))
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "Make a work folder on the board" not in result.stdout
    assert not (reports_dir / "bench").exists()


def test_bench_on_the_software_model_reports_picks_and_compares(board: dict[str, str],  # noqa: F811
                                                                reports_dir: Path) -> None:
    settings = {**board, **TINY, "board_bench_op_test_precisions": ["fp16"], "rosenblatt_reports_dir": str(reports_dir)}
    outcome = rosenblatt_ok(*cli_bench(settings), timeout=1800)
    assert "bench done; report " + str(reports_dir / "bench/controller") in " ".join(played(outcome).split())
    report = json.loads((reports_dir / "bench/controller/latest.json").read_text())
    assert report["ok"], [check for check in report["checks"] if not check["ok"]]
    assert not report["board_figures"] and report["device_description"].startswith("SOFTWARE NPU MODEL")
    assert {(row["config"], row["test"]) for row in report["bench"]} == {
        ("CPU", "pp32"), ("CPU", "tg4"), ("RKNPU FP16", "pp32"), ("RKNPU FP16", "tg4"), ("RKNPU INT8 g256", "pp32"),
        ("RKNPU INT8 g256", "tg4"), ("CPU ub8", "pp32"), ("RKNPU FP16 ub8", "pp32"), ("CPU ub32", "pp32"),
        ("RKNPU FP16 ub32", "pp32"), ("RKNPU FP16 waves of 8", "pp32")}
    assert set(report["perplexity"]) == {"CPU", "RKNPU FP16", "RKNPU INT8 g256"}
    assert report["op_tests"][0]["passed"] == report["op_tests"][0]["total"] > 0
    assert {core["core"] for core in report["probe"]["cores"]} == {0, 1, 2}
    counters = [value for value in report["counters"].values() if value]
    assert counters and all(value["npu_ops"] > 0 for value in counters)
    assert {value["precision"] for value in counters} == {"fp16", "int8"}
    waves = report["picks"]["wave_rows"]  # one wave size: picked, with the backend's own exposed share
    assert waves["GGML_RKNPU_WAVE_ROWS"] == 8 and 0 <= waves["exposed_share"] <= 1, waves
    chosen = report["picks"]["precision"]["pick"]
    assert chosen is None or chosen["perplexity_difference"] <= report["picks"]["perplexity_bound"]
    markdown = (reports_dir / "bench/controller/latest.md").read_text()
    assert "**NOT BOARD FIGURES**" in markdown.split("## Defaults")[0]
    assert (reports_dir / "bench/controller/latest.svg").read_text().startswith("<svg")

    # The previous run made a hundred times faster: the second run lists each figure as slower, and fails only
    # when told to.
    for row in report["bench"]:
        row["tokens_per_s"] *= 100
    (reports_dir / "bench/controller/latest.json").write_text(json.dumps(report))
    second = rosenblatt(*cli_bench({**settings, "board_bench_fail_on_regression": True}), timeout=1800)
    assert second.returncode == 1, second.stdout[-3000:]
    assert "changes against the previous run" in second.stdout
    flagged = json.loads((reports_dir / "bench/controller/latest.json").read_text())
    assert len([line for line in flagged["regressions"] if "t/s, was" in line]) == len(report["bench"])
    assert len(list((reports_dir / "bench/controller").glob("2*.json"))) == 2
