"""inference_report through Ansible: files written, checks derived, regressions against the previous run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import BIN, REPO

FIXTURES = REPO / "tests/fixtures"
BENCH = (FIXTURES / "llama-bench-cpu.json").read_text()
PPL = (FIXTURES / "llama-perplexity-cpu.txt").read_text()


def slowed(bench_json: str, factor: float) -> str:
    tests = json.loads(bench_json)
    for test in tests:
        test["avg_ts"] *= factor
    return json.dumps(tests)


def run_module(reports: Path, run: str, **overrides: object) -> subprocess.CompletedProcess:
    arguments = {
        "host": "vboard", "run": run, "reports_dir": str(reports),
        "meta": {"device": {"description": "RKNPU on the software NPU model, not hardware"},
                 "board": {"model": "qemu-virt-arm64", "kernel": "6.1"}, "model": {"name": "gemma"},
                 "runtime": {"llama_cpp": "0.25.3"}},
        "bench": {"CPU": BENCH, "RKNPU": BENCH},
        "perplexity": {"CPU": PPL, "RKNPU": PPL.replace("48.3937", "48.9000")},
        "completions": {"CPU": ["The perceptron learns by turning its weights."],
                        "RKNPU": ["The perceptron learns by turning its weights!"]},
        "agreement_chars": 32,
        **overrides,
    }
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(BIN / "ansible"), "localhost", "-m", "rosenblatt.pipeline.inference_report",
                           "-a", json.dumps(arguments)], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=120, check=False)


def test_report_then_regression(tmp_path: Path) -> None:
    first = run_module(tmp_path, "run1")
    assert first.returncode == 0, first.stdout
    report = json.loads((tmp_path / "vboard/run1.json").read_text())
    assert report["ok"] and report["regressions"] == []
    names = [check["name"] for check in report["checks"]]
    assert names == ["output produced", "greedy agreement RKNPU vs CPU", "perplexity RKNPU vs CPU"]
    assert round(report["perplexity"]["relative_difference"], 4) == round(0.5063 / 48.3937, 4)
    markdown = (tmp_path / "vboard/latest.md").read_text()
    assert "**RKNPU on the software NPU model, not hardware**" in markdown
    assert (tmp_path / "vboard/latest.svg").read_text().count("<rect") == 4

    second = run_module(tmp_path, "run2", bench={"CPU": BENCH, "RKNPU": slowed(BENCH, 0.5)})
    assert second.returncode != 0
    assert "regressions against the previous run: RKNPU pp64:" in second.stdout
    assert json.loads((tmp_path / "vboard/latest.json").read_text())["run"] == "run2"  # written all the same


def test_failed_checks_fail_the_task(tmp_path: Path) -> None:
    result = run_module(tmp_path, "run1", completions={"CPU": ["Paris is the capital of France."],
                                                       "RKNPU": ["Lyon is the capital of France."]},
                        perplexity={"CPU": PPL, "RKNPU": PPL.replace("48.3937", "60.0000")})
    assert result.returncode != 0
    assert "verification failed: greedy agreement RKNPU vs CPU, perplexity RKNPU vs CPU" in result.stdout
    assert "| greedy agreement RKNPU vs CPU | **FAILED** |" in (tmp_path / "vboard/run1.md").read_text()


def test_unreadable_output_is_named(tmp_path: Path) -> None:
    result = run_module(tmp_path, "run1", bench={"RKNPU": "Segmentation fault"})
    assert result.returncode != 0
    assert "vboard: llama-bench output for RKNPU is not JSON" in result.stdout
    assert "Traceback" not in result.stdout
