"""The board bench: its plan, and its report from real outputs of npu-probe, test-backend-ops, llama-bench,
llama-perplexity and the RKNPU backend's counters (tests/fixtures/bench/README.md says how each was recorded)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_bench import (
    ReportError,
    build,
    parse_op_test,
    parse_probe,
    plan,
    render_markdown,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_runs import command_bounds, command_outcome
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import failure, write_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/bench"
SETTINGS: dict[str, Any] = {
    "backend": "model", "runtime_path": "/opt/rt", "model": "/m/model.gguf", "threads": 4, "workdir": "/tmp/w",
    "probe": True, "op_test_precisions": ["fp16", "int8"], "int8_groups": [0, 128, 256, 512],
    "min_batches": [1, 4, 8, 16, 32, 64], "wave_rows": [32, 64, 128, 256, 512], "prompt": 512, "generate": 128,
    "repetitions": 3, "sweep_repetitions": 2,
    "perplexity_file": "/tmp/w/perplexity.txt", "perplexity_context": 64, "perplexity_chunks": 0,
    "command_seconds": 900, "memory_mib": 3072,
}
# The recorded runs' sizes: pp32/tg4, sweep at batches 4 and 32, waves of 8 and 16 rows, one INT8 group.
SMALL = {**SETTINGS, "int8_groups": [256], "min_batches": [4, 32], "wave_rows": [8, 16], "prompt": 32, "generate": 4,
         "repetitions": 1, "sweep_repetitions": 1, "perplexity_chunks": 1}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# The recorded output of each kind of command (stdout, stderr) and counters, by plan entry.
def recorded(entry: dict[str, Any]) -> tuple[str, str]:
    kind, config = entry["kind"], entry["config"]
    if kind == "npu-probe":
        return fixture("npu-probe.json"), ""
    if kind == "op-test":
        return fixture("test-backend-ops-%s.txt" % config.split()[-1].lower()), ""
    if kind in ("llama-bench", "sweep", "wave-sweep"):
        return fixture("llama-bench-%s.json" % ("cpu" if config.startswith("CPU") else "rknpu")), ""
    return "", fixture("llama-perplexity-%s.txt" % {"CPU": "cpu", "RKNPU FP16": "fp16"}.get(config, "int8"))


def results(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The registered results of a bench whose every command ran and printed its recorded output."""
    out = []
    for entry in plan(settings):
        stdout, stderr = recorded(entry)
        out.append({"item": entry, "rc": 0, "stdout": stdout, "stderr": stderr, "delta": "0:00:01.5"})
    return out


def counters(settings: dict[str, Any]) -> dict[str, str]:
    return {entry["id"]: fixture("rknpu-stats.json") for entry in plan(settings)
            if "GGML_RKNPU_STATS" in entry["environment"]}


def params(settings: dict[str, Any] = SMALL, **changes: Any) -> dict[str, Any]:
    return {**settings, "host": "controller", "run": "20261204T190000Z", "results": results(settings),
            "counters": counters(settings), "perplexity_bound": 0.06, "tolerance": 0.10,
            "meta": {"board": {"model": "generic-linux", "kernel": "6.1", "cpu_governor": "performance",
                               "npu_clock_hz": None, "cpus": "all", "threads": 4}}, **changes}


def scaled(report_params: dict[str, Any], config: str, factor: float) -> None:
    """Make one configuration's llama-bench figures `factor` times the recorded ones (the test says so)."""
    for result in report_params["results"]:
        if result["item"]["config"] == config and result["item"]["kind"] in ("llama-bench", "sweep", "wave-sweep"):
            rows = json.loads(result["stdout"])
            for row in rows:
                row["avg_ts"] *= factor
            result["stdout"] = json.dumps(rows)


def test_the_plan_runs_every_configuration_with_its_settings() -> None:
    runs = plan(SETTINGS)
    assert [run["kind"] for run in runs] == (["npu-probe", "op-test", "op-test"] + ["llama-bench"] * 6
                                             + ["sweep"] * 12 + ["wave-sweep"] * 5 + ["perplexity"] * 6)
    bench = {run["config"]: run for run in runs if run["kind"] == "llama-bench"}
    assert list(bench) == ["CPU", "RKNPU FP16", "RKNPU INT8 per-row", "RKNPU INT8 g128", "RKNPU INT8 g256",
                           "RKNPU INT8 g512"]
    assert bench["CPU"]["environment"] == {}
    assert bench["RKNPU INT8 g128"]["environment"] == {
        "GGML_BACKEND_PATH": "/opt/rt/lib/libggml-rknpu.so", "NPU_BACKEND": "model", "GGML_RKNPU_PRECISION": "int8",
        "GGML_RKNPU_INT8_GROUP": "128", "GGML_RKNPU_STATS": "/tmp/w/%s.json" % bench["RKNPU INT8 g128"]["id"]}
    assert bench["CPU"]["argv"] == ["/opt/rt/bin/llama-bench", "-m", "/m/model.gguf", "-t", "4", "-p", "512", "-n",
                                    "128", "-r", "3", "-o", "json"]
    sweep = {run["config"]: run for run in runs if run["kind"] == "sweep"}
    assert sweep["RKNPU FP16 ub8"]["environment"]["GGML_RKNPU_MIN_BATCH"] == "8"
    assert "GGML_RKNPU_MIN_BATCH" not in sweep["CPU ub8"]["environment"]
    assert sweep["CPU ub8"]["argv"][-10:] == ["-n", "0", "-b", "8", "-ub", "8", "-r", "2", "-o", "json"]
    waves = [run for run in runs if run["kind"] == "wave-sweep"]
    assert [run["environment"]["GGML_RKNPU_WAVE_ROWS"] for run in waves] == ["32", "64", "128", "256", "512"]
    assert all(run["environment"]["GGML_RKNPU_PRECISION"] == "fp16" and "GGML_RKNPU_STATS" in run["environment"]
               and run["argv"][-8:] == ["-p", "512", "-n", "0", "-r", "2", "-o", "json"] for run in waves)
    op_tests = [run for run in runs if run["kind"] == "op-test"]
    assert [run["environment"]["GGML_RKNPU_PRECISION"] for run in op_tests] == ["fp16", "int8"]
    assert all(run["environment"]["GGML_RKNPU_MIN_BATCH"] == "0" and "GGML_RKNPU_STATS" not in run["environment"]
               for run in op_tests)
    assert len({run["id"] for run in runs}) == len(runs)


def test_the_emulated_device_is_preloaded_and_nothing_optional_runs_when_not_asked() -> None:
    runs = plan({**SETTINGS, "backend": "rocket-emulated", "probe": False, "op_test_precisions": [],
                 "int8_groups": [], "min_batches": [], "wave_rows": []})
    assert [(run["kind"], run["config"]) for run in runs] == [
        ("llama-bench", "CPU"), ("llama-bench", "RKNPU FP16"), ("perplexity", "CPU"), ("perplexity", "RKNPU FP16")]
    assert runs[1]["environment"]["LD_PRELOAD"] == "/opt/rt/lib/librocket-emu.so"
    assert runs[1]["environment"]["NPU_BACKEND"] == "rocket"


@pytest.mark.parametrize(("changes", "message"), [
    ({"int8_groups": [0, 100]}, "INT8 K groups (board_bench_int8_groups) [100]"),
    ({"int8_groups": [8192]}, "INT8 K groups (board_bench_int8_groups) [8192]"),
    ({"min_batches": [4, 1024]},
     "MIN_BATCH sweep values (board_bench_min_batches) [1024]: each must be from 1 to the prompt length 512"),
    ({"wave_rows": [0, 64]},
     "wave sweep values (board_bench_wave_rows) [0]: each must be from 1 to the prompt length 512"),
    ({"op_test_precisions": ["bf16"]}, "op test precisions (board_bench_op_test_precisions) ['bf16']"),
    ({"backend": "gpu"}, "NPU backend 'gpu' is not one of rocket, rocket-emulated, model"),
])
def test_bad_settings_are_refused_naming_the_value(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match="^" + re.escape(message)):
        plan({**SETTINGS, **changes})


def test_bounds_cap_time_memory_priority_and_cpus() -> None:
    assert command_bounds(900, 3072, True, 10, "4-7") == [
        "timeout", "--kill-after=10", "900", "systemd-run", "--scope", "--quiet", "-p", "MemoryMax=3072M",
        "-p", "MemorySwapMax=0", "nice", "-n", "10", "taskset", "-c", "4-7"]
    assert command_bounds(60, 64, False, 5, "") == ["timeout", "--kill-after=10", "60", "nice", "-n", "5"]


@pytest.mark.parametrize(("result", "detail"), [
    ({"rc": 0, "delta": "0:00:02"}, "ok in 0:00:02"),
    ({"rc": 124}, "stopped by the deadline of 900 s"),
    ({"rc": -9}, "killed (rc -9; the memory cap is 3072 MiB)"),
    ({"rc": 1, "stderr_lines": ["a", "b", "c", "error: no model"]}, "rc 1: b / c / error: no model"),
])
def test_a_commands_outcome_names_what_stopped_it(result: dict[str, Any], detail: str) -> None:
    outcome = command_outcome(result, 900, 3072)
    assert outcome == {"ok": result["rc"] == 0, "detail": detail}


def test_npu_probe_output_per_core_and_precision() -> None:
    probe = parse_probe(fixture("npu-probe.json"))
    assert probe["backend"] == "model" and probe["ok"]
    assert [(core["precision"], core["core"]) for core in probe["cores"]] == [
        (precision, core) for precision in ("int8", "fp16") for core in range(3)]
    assert all(core["max_abs_error"] == 0 for core in probe["cores"] if core["precision"] == "int8")
    with pytest.raises(ReportError, match="npu-probe output is not its JSON"):
        parse_probe('{"tool": "npu-probe"}')


def test_op_test_summary() -> None:
    for precision in ("fp16", "int8"):
        summary = parse_op_test(fixture("test-backend-ops-%s.txt" % precision), "RKNPU")
        assert summary["passed"] == summary["total"] > 100
    assert parse_op_test("  3/4 tests passed\n", "x") == {"config": "x", "passed": 3, "total": 4}
    with pytest.raises(ReportError, match="printed no 'tests passed' line"):
        parse_op_test("Backend 1/2: RKNPU\n  Skipping\n", "RKNPU INT8")


def test_report_from_real_outputs_passes_and_says_it_is_not_board_figures() -> None:
    report = build(params(), None)
    failed = [check for check in report["checks"] if not check["ok"]]
    assert report["ok"], failed
    names = {check["name"] for check in report["checks"]}
    assert {"npu-probe self-test per core", "test-backend-ops MUL_MAT RKNPU FP16",
            "test-backend-ops MUL_MAT RKNPU INT8", "RKNPU offload (sweep RKNPU FP16 ub4)",
            "RKNPU offload (perplexity RKNPU INT8 g256)", "llama-bench CPU"} <= names
    assert {(row["config"], row["test"]) for row in report["bench"]} >= {("CPU", "pp32"), ("RKNPU FP16", "tg4"),
                                                                         ("CPU ub4", "pp32")}
    assert not report["board_figures"]
    assert report["device_description"].startswith("SOFTWARE NPU MODEL (NPU_BACKEND=model")
    markdown = render_markdown(report, "x.svg")
    header = markdown.split("## Defaults")[0]
    assert "**NOT BOARD FIGURES**" in header and "SOFTWARE NPU MODEL" in header
    assert "## MIN_BATCH sweep" in markdown and "![tokens per second per configuration](x.svg)" in markdown
    board = build(params(backend="rocket"), None)
    assert board["board_figures"] and "NOT BOARD FIGURES" not in render_markdown(board, None)


def test_min_batch_pick_is_the_smallest_batch_where_the_npu_beats_the_cpu() -> None:
    both = params({**SMALL, "min_batches": [4, 32]})
    scaled(both, "RKNPU FP16 ub4", 0.01)      # at batch 4, RKNPU at a hundredth of its figure
    scaled(both, "RKNPU FP16 ub32", 100)      # at batch 32, a hundred times
    picks = build(both, None)["picks"]
    assert picks["min_batch"]["GGML_RKNPU_MIN_BATCH"] == 32
    scaled(both, "RKNPU FP16 ub32", 0.0001)
    nowhere = build(both, None)
    assert nowhere["picks"]["min_batch"] is None
    assert "none: RKNPU's pp32 beats CPU-only's at no batch of the sweep" in render_markdown(nowhere, None)


def test_wave_pick_is_the_fastest_wave_size_with_its_exposed_share() -> None:
    waves = params()
    scaled(waves, "RKNPU FP16 waves of 16", 100)
    for result in waves["results"]:  # the counters of the 16-row run say 0.05 s of 0.5 s had no job in flight
        if result["item"]["config"] == "RKNPU FP16 waves of 16":
            counters = json.loads(waves["counters"][result["item"]["id"]])
            waves["counters"][result["item"]["id"]] = json.dumps(
                {**counters, "npu_seconds": 0.5, "npu_exposed_seconds": 0.05})
    report = build(waves, None)
    assert report["picks"]["wave_rows"] == {"GGML_RKNPU_WAVE_ROWS": 16, "tokens_per_s": pytest.approx(
        100 * next(row["tokens_per_s"] for row in build(params(), None)["bench"]
                   if row["config"] == "RKNPU FP16 waves of 16"), rel=1e-4), "exposed_share": pytest.approx(0.1)}
    markdown = render_markdown(report, None)
    assert "`GGML_RKNPU_WAVE_ROWS=16`" in markdown and "0.100 of its NPU calls' time had no job in flight" in markdown
    assert re.search(r"\| 16 \| [\d.]+ \| 0\.100 \|", markdown) and re.search(r"\| 8 \| [\d.]+ \| - \|", markdown)
    scaled(waves, "RKNPU FP16 waves of 16", 0.0001)
    slower = build(waves, report)
    assert slower["picks"]["wave_rows"]["GGML_RKNPU_WAVE_ROWS"] == 8
    assert "the figures pick wave_rows 8, the previous run's picked 16" in slower["regressions"]


def test_precision_pick_is_the_fastest_within_the_perplexity_bound() -> None:
    fast_int8 = params()
    scaled(fast_int8, "RKNPU INT8 g256", 100)
    pick = build(fast_int8, None)["picks"]["precision"]
    assert pick["pick"]["config"] == "RKNPU INT8 g256"
    assert pick["pick"]["settings"] == {"GGML_RKNPU_PRECISION": "int8", "GGML_RKNPU_INT8_GROUP": "256"}
    assert "below" in pick["refused"]["RKNPU FP16"]
    # the same figures with a bound tighter than INT8's recorded perplexity difference: INT8 is not picked
    difference = pick["pick"]["perplexity_difference"]
    assert difference > 0
    tight = build({**fast_int8, "perplexity_bound": difference / 2}, None)["picks"]["precision"]
    assert tight["pick"] is None or tight["pick"]["config"] != "RKNPU INT8 g256"
    assert "beyond the bound" in tight["refused"]["RKNPU INT8 g256"]


def test_a_failed_command_fails_its_checks_and_its_figures_are_left_out() -> None:
    broken = params()
    for result in broken["results"]:
        if result["item"]["config"] == "RKNPU FP16" and result["item"]["kind"] == "llama-bench":
            result.update(rc=124, stdout="")
            del broken["counters"][result["item"]["id"]]
    report = build(broken, None)
    failed = {check["name"]: check["detail"] for check in report["checks"] if not check["ok"]}
    assert failed == {"llama-bench RKNPU FP16": "stopped by the deadline of 900 s",
                      "RKNPU offload (llama-bench RKNPU FP16)": "no counters: the backend was not loaded"}
    assert not any(row["config"] == "RKNPU FP16" for row in report["bench"])
    assert "RKNPU FP16" in report["picks"]["precision"]["refused"]


def test_comparison_with_the_previous_run(tmp_path: Path) -> None:
    first = build(params(), None)
    previous = copy.deepcopy(first)
    for row in previous["bench"]:
        if row["config"] == "CPU":
            row["tokens_per_s"] *= 100
    previous["picks"]["min_batch"] = {"GGML_RKNPU_MIN_BATCH": 16}
    second = build(params(), previous)
    assert sum("CPU pp32" in line or "CPU tg4" in line for line in second["regressions"]) == 2
    assert "the figures pick min_batch %s, the previous run's picked 16" % (
        (first["picks"]["min_batch"] or {}).get("GGML_RKNPU_MIN_BATCH")) in second["regressions"]
    assert build(params(), first)["regressions"] == []
    write_report(str(tmp_path), second["run"], second, render_markdown)
    assert json.loads((tmp_path / "latest.json").read_text())["regressions"] == second["regressions"]
    assert "## Against the previous run" in (tmp_path / "latest.md").read_text()
    assert (tmp_path / (second["run"] + ".svg")).read_text().startswith("<svg")


def test_the_module_fails_on_a_failed_check_and_on_changes_only_when_told() -> None:
    report = build(params(), None)
    assert failure("controller", report, "r.md", True) is None
    report["regressions"] = ["CPU pp32: 1.00 t/s, was 2.00"]
    assert failure("controller", report, "r.md", False) is None
    assert failure("controller", report, "r.md", True, regressed="changes against the previous run") == (
        "controller: changes against the previous run: CPU pp32: 1.00 t/s, was 2.00 (report r.md)")
    report["checks"][0]["ok"] = False
    assert failure("controller", report, "r.md", False, failed="bench checks failed") == (
        "controller: bench checks failed: npu-probe NPU (report r.md)")
