"""The verification report: parsing llama.cpp's outputs, checks, regressions, rendering."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import (
    ReportError,
    agreeing_prefix,
    build_report,
    compare,
    parse_llama_bench,
    parse_perplexity,
    render_markdown,
    render_svg,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Recorded from llama-bench of the pinned llama.cpp (tests/fixtures/README.md says how).
BENCH_CPU = (FIXTURES / "llama-bench-cpu.json").read_text()
PERPLEXITY_CPU = (FIXTURES / "llama-perplexity-cpu.txt").read_text()
META = {"device": {"description": "RKNPU on the software NPU model (RKNPU_DEVICE=model), not hardware"},
        "board": {"model": "qemu-virt-arm64", "kernel": "6.1.0-28-arm64", "cpu_governor": "n/a"},
        "model": {"name": "gemma-3-270m-q4_k_m.gguf", "sha256": "a5fd3b62"}, "runtime": {"llama_cpp": "b0"},
        "host": "vboard", "run": "20261124T000000Z", "reference": "CPU"}


def test_llama_bench_rows_from_real_output() -> None:
    rows = parse_llama_bench(BENCH_CPU, "CPU")
    assert [row["test"] for row in rows] == ["pp64", "tg16"]
    assert all(row["tokens_per_s"] > 0 and row["config"] == "CPU" for row in rows)
    assert rows[0]["backends"] == "CPU"


@pytest.mark.parametrize(("text", "message"), [("", "not JSON"), ("[]", "holds no test"),
                                               ('[{"n_prompt": 1}]', "lacks a field")])
def test_unreadable_llama_bench_output_is_named(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_llama_bench(text, "RKNPU")


def test_perplexity_from_real_output() -> None:
    value = parse_perplexity(PERPLEXITY_CPU)
    assert value["ppl"] > 1 and value["error"] > 0
    with pytest.raises(ReportError, match="Final estimate"):
        parse_perplexity("llama_perplexity: tokenizing the input ..\n")


def test_agreeing_prefix() -> None:
    assert agreeing_prefix("The capital of France is Paris.", "The capital of France is Lyon.") == 25
    assert agreeing_prefix("abc", "abcdef") == 3
    assert agreeing_prefix("", "x") == 0


def report(bench: list[dict], checks: list[dict]) -> dict:
    return build_report(META, bench, checks, None)


def test_slower_benchmark_beyond_tolerance_is_a_regression() -> None:
    before = report(parse_llama_bench(BENCH_CPU, "CPU"), [])
    after = copy.deepcopy(before)
    after["bench"][0]["tokens_per_s"] = before["bench"][0]["tokens_per_s"] * 0.85
    after["bench"][1]["tokens_per_s"] = before["bench"][1]["tokens_per_s"] * 0.95
    [regression] = compare(before, after, tolerance=0.10)
    assert regression.startswith("CPU pp64: ") and "(-15%, tolerance 10%)" in regression
    assert compare(before, after, tolerance=0.20) == []
    assert compare(None, after, tolerance=0.10) == []


def test_check_that_passed_before_and_fails_now_is_a_regression() -> None:
    before = report([], [{"name": "greedy agreement RKNPU vs CPU", "ok": True, "detail": ""}])
    after = report([], [{"name": "greedy agreement RKNPU vs CPU", "ok": False, "detail": "shared [3]"}])
    assert compare(before, after, 0.1) == [
        "check 'greedy agreement RKNPU vs CPU' passed in the previous run and fails now: shared [3]"]
    assert after["ok"] is False


def test_markdown_names_the_device_where_a_reader_looks() -> None:
    rows = parse_llama_bench(BENCH_CPU, "CPU") + [dict(row, config="RKNPU", tokens_per_s=row["tokens_per_s"] * 2)
                                                  for row in parse_llama_bench(BENCH_CPU, "CPU")]
    text = render_markdown(report(rows, [{"name": "backend loaded", "ok": True, "detail": "RKNPU"}]), "run.svg")
    assert "| NPU device | **RKNPU on the software NPU model (RKNPU_DEVICE=model), not hardware** |" in text
    assert "| RKNPU | pp64 |" in text and "| 2.00x |" in text
    assert "**Result: passed**" in text
    svg = render_svg(report(rows, []))
    assert svg.count("<rect") == 4 and svg.startswith("<svg")
    json.dumps(report(rows, []))  # the report is plain JSON


def test_markdown_sets_the_completions_side_by_side() -> None:
    completions = {"RKNPU": [" Mars, Jupiter | moons", " four"], "CPU": [" Mars, Jupiter, Saturn", " five"]}
    text = render_markdown(build_report(META, [], [], None, completions), None)
    table = text.split("## Greedy completions")[1].strip().splitlines()
    assert table[2:] == ["| 1 | CPU |  | Mars, Jupiter, Saturn |", "| 2 | CPU |  | five |",
                         "| 1 | RKNPU | 14 chars | Mars, Jupiter \\| moons |", "| 2 | RKNPU | 2 chars | four |"]
