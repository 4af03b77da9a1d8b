# Copyright: rosenblatt developers
# MIT License
"""The verification report: what ran where, what was checked, how fast, and what got worse.

Inputs are the raw outputs of llama.cpp's own tools run on the board (`llama-bench -o json`,
`llama-perplexity`, the completion texts) plus the board's facts. The report is one JSON
document per host and run, rendered to Markdown and an SVG bar chart, and compared with the
host's previous report: a benchmark slower by more than the tolerance, or a check that passed
before and fails now, is a regression.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.atomic_file import write_atomically

# The options every report module takes (doc_fragments/report.py documents them).
REPORT_SPEC: dict[str, dict[str, Any]] = {
    "host": {"type": "str", "required": True},
    "run": {"type": "str", "required": True},
    "reports_dir": {"type": "path", "required": True},
    "tolerance": {"type": "float", "default": 0.10},
}

PPL_LINE = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)")


class ReportError(Exception):
    """Raw output that cannot be read: the message says which and why."""


def parse_llama_bench(text: str, config: str) -> list[dict[str, Any]]:
    """llama-bench -o json: one row per test (pp512, tg128, ...) with tokens per second."""
    try:
        tests = json.loads(text)
    except ValueError as exc:
        raise ReportError("llama-bench output for %s is not JSON: %s" % (config, exc)) from None
    if not isinstance(tests, list) or not tests:
        raise ReportError("llama-bench output for %s holds no test" % config)
    rows = []
    for test in tests:
        try:
            prompt, generated = int(test["n_prompt"]), int(test["n_gen"])
            name = "pp%d" % prompt if prompt and not generated else "tg%d" % generated if generated and not prompt \
                else "pp%d+tg%d" % (prompt, generated)
            rows.append({
                "config": config,
                "test": name,
                "tokens_per_s": round(float(test["avg_ts"]), 3),
                "stddev": round(float(test["stddev_ts"]), 3),
                "threads": int(test["n_threads"]),
                "backends": test.get("backends", ""),
                "devices": test.get("devices", ""),
                "build_commit": test.get("build_commit", ""),
                "model_type": test.get("model_type", ""),
            })
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError("llama-bench output for %s lacks a field: %s" % (config, exc)) from None
    return rows


def parse_perplexity(text: str) -> dict[str, float]:
    match = PPL_LINE.search(text)
    if not match:
        raise ReportError("llama-perplexity printed no 'Final estimate' line")
    return {"ppl": float(match.group(1)), "error": float(match.group(2))}


def agreeing_prefix(reference: str, other: str) -> int:
    """Characters the two greedy outputs share from the start."""
    length = 0
    for left, right in zip(reference, other, strict=False):
        if left != right:
            break
        length += 1
    return length


def build_report(meta: dict[str, Any], bench: list[dict[str, Any]], checks: list[dict[str, Any]],
                 perplexity: dict[str, Any] | None, completions: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        **meta,
        "checks": checks,
        "completions": completions or {},
        "bench": bench,
        "perplexity": perplexity,
        "ok": all(check["ok"] for check in checks),
        "regressions": [],
    }


def compare(previous: dict[str, Any] | None, current: dict[str, Any], tolerance: float) -> list[str]:
    """Regressions of `current` against the host's previous report."""
    if not previous:
        return []
    regressions = []
    before = {(row["config"], row["test"]): row for row in previous.get("bench", [])}
    for row in current["bench"]:
        old = before.get((row["config"], row["test"]))
        if old and old["tokens_per_s"] > 0 and row["tokens_per_s"] < old["tokens_per_s"] * (1 - tolerance):
            change = row["tokens_per_s"] / old["tokens_per_s"] - 1
            regressions.append("%s %s: %.2f t/s, was %.2f (%+.0f%%, tolerance %.0f%%)"
                               % (row["config"], row["test"], row["tokens_per_s"], old["tokens_per_s"],
                                  change * 100, tolerance * 100))
    passed_before = {check["name"] for check in previous.get("checks", []) if check["ok"]}
    regressions.extend("check '%s' passed in the previous run and fails now: %s" % (check["name"], check["detail"])
                       for check in current["checks"] if not check["ok"] and check["name"] in passed_before)
    return regressions


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any], svg_name: str | None) -> str:
    device, reference = report["device"], report["reference"]
    lines = [
        "# Verification: %s, %s" % (report["host"], report["run"]),
        "",
        "**Result: %s**%s" % ("passed" if report["ok"] else "FAILED",
                              "; %d regression(s)" % len(report["regressions"]) if report["regressions"] else ""),
        "",
        "| | |",
        "|---|---|",
        "| NPU device | **%s** |" % _cell(device["description"]),
        "| board | %s, kernel %s |" % (_cell(report["board"].get("model")), _cell(report["board"].get("kernel"))),
        "| CPU governor | %s |" % _cell(report["board"].get("cpu_governor")),
        "| CPUs, threads | %s, %s |" % (_cell(report["board"].get("cpus", "all")),
                                        _cell(report["board"].get("threads"))),
        "| NPU clock | %s |" % _cell(report["board"].get("npu_clock_hz") or "not readable"),
        "| model | %s (sha256 %s) |" % (_cell(report["model"].get("name")), _cell(report["model"].get("sha256"))),
        "| llama.cpp | %s |" % _cell(report["runtime"].get("llama_cpp")),
        "",
        "## Checks",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    lines += ["| %s | %s | %s |" % (_cell(c["name"]), "ok" if c["ok"] else "**FAILED**", _cell(c["detail"]))
              for c in report["checks"]]
    if report["bench"]:
        base = {row["test"]: row["tokens_per_s"] for row in report["bench"] if row["config"] == reference}
        lines += ["", "## llama-bench", "", "| configuration | test | tokens/s | ± | threads | vs %s |" % reference,
                  "|---|---|---|---|---|---|"]
        for row in report["bench"]:
            speed = base.get(row["test"])
            ratio = "%.2fx" % (row["tokens_per_s"] / speed) if speed and row["config"] != reference else ""
            lines.append("| %s | %s | %.2f | %.2f | %d | %s |" % (
                _cell(row["config"]), row["test"], row["tokens_per_s"], row["stddev"], row["threads"], ratio))
        if svg_name:
            lines += ["", "![tokens per second per configuration](%s)" % svg_name]
    if report["perplexity"]:
        ppl = report["perplexity"]
        lines += ["", "## Perplexity", "", "| configuration | PPL |", "|---|---|"]
        lines += ["| %s | %.4f ± %.4f |" % (config, value["ppl"], value["error"])
                  for config, value in sorted(ppl["by_config"].items())]
        if ppl.get("relative_difference") is not None:
            lines += ["", "Relative difference %.4f%% (bound %.4f%%)." % (ppl["relative_difference"] * 100,
                                                                      ppl["bound"] * 100)]
    completions = report.get("completions") or {}
    if completions:
        lines += ["", "## Greedy completions", "", "| prompt | configuration | shared with %s | text |" % reference,
                  "|---|---|---|---|"]
        references = completions.get(reference, [])
        for config, texts in sorted(completions.items(), key=lambda item: item[0] != reference):
            for index, text in enumerate(texts):
                shared = agreeing_prefix(references[index], text) if index < len(references) else 0
                lines.append("| %d | %s | %s | %s |" % (index + 1, _cell(config),
                                                       "" if config == reference else "%d chars" % shared,
                                                       _cell(text.strip())))
    if report["regressions"]:
        lines += ["", "## Regressions against the previous run", ""] + ["- " + _cell(r) for r in report["regressions"]]
    return "\n".join(lines) + "\n"


def render_svg(report: dict[str, Any]) -> str:
    """A horizontal bar chart of tokens per second, one bar per configuration and test."""
    rows = report["bench"]
    width, bar_height, left, gap = 640, 22, 190, 6
    height = 40 + len(rows) * (bar_height + gap)
    peak = max((row["tokens_per_s"] for row in rows), default=1.0) or 1.0
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="12">' % (width, height),
             '<text x="10" y="20" font-size="14">%s: tokens per second</text>' % html.escape(report["host"])]
    for index, row in enumerate(rows):
        top = 32 + index * (bar_height + gap)
        length = (width - left - 80) * row["tokens_per_s"] / peak
        colour = "#4a7ab5" if row["config"] == report["reference"] else "#d9822b"
        parts += ['<text x="10" y="%d">%s %s</text>' % (top + 15, html.escape(row["config"]), html.escape(row["test"])),
                  '<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left, top, length, bar_height, colour),
                  '<text x="%.1f" y="%d">%.1f</text>' % (left + length + 5, top + 15, row["tokens_per_s"])]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def derived_checks(params: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The checks the raw outputs make: output produced, greedy agreement and perplexity against the reference."""
    reference = params["reference"]
    checks = []
    completions = params["completions"]
    if completions:
        empty = [config for config, texts in completions.items() if not texts or not all(t.strip() for t in texts)]
        checks.append({"name": "output produced", "ok": not empty,
                       "detail": "empty output from %s" % ", ".join(sorted(empty)) if empty else
                       "%d prompt(s) in %d configuration(s)" % (len(completions.get(reference, [])), len(completions))})
        references = completions.get(reference, [])
        for config, texts in sorted(completions.items()):
            if config == reference:
                continue
            name = "greedy agreement %s vs %s" % (config, reference)
            if len(texts) != len(references):
                checks.append({"name": name, "ok": False, "detail": "%d completion(s) for %d reference prompt(s)"
                               % (len(texts), len(references))})
                continue
            pairs = list(zip(references, texts, strict=True))
            shared = [agreeing_prefix(ref, text) for ref, text in pairs]
            needed = [min(params["agreement_chars"], len(ref), len(text)) for ref, text in pairs]
            checks.append({"name": name, "ok": all(s >= n for s, n in zip(shared, needed, strict=True)),
                           "detail": "shared prefix per prompt %s characters, %d required" % (
                               shared, params["agreement_chars"])})
    perplexity = None
    if params["perplexity"]:
        by_config = {config: parse_perplexity(text) for config, text in params["perplexity"].items()}
        perplexity = {"by_config": by_config, "bound": params["perplexity_bound"], "relative_difference": None}
        base = by_config.get(reference)
        for config, value in sorted(by_config.items()):
            if config == reference or not base:
                continue
            difference = abs(value["ppl"] - base["ppl"]) / base["ppl"]
            perplexity["relative_difference"] = max(difference, perplexity["relative_difference"] or 0.0)
            checks.append({"name": "perplexity %s vs %s" % (config, reference),
                           "ok": difference <= params["perplexity_bound"],
                           "detail": "%.4f vs %.4f: %.3f%% (bound %.3f%%)" % (
                               value["ppl"], base["ppl"], difference * 100, params["perplexity_bound"] * 100)})
    return checks, perplexity


def previous_report(directory: str) -> dict[str, Any] | None:
    """The host's latest report before this run, if there is one."""
    latest = os.path.join(directory, "latest.json")
    if not os.path.exists(latest):
        return None
    with open(latest, encoding="utf-8") as handle:
        return json.load(handle)


def failure(host: str, report: dict[str, Any], markdown: str, fail_on_regression: bool, *,
            failed: str = "verification failed", regressed: str = "regressions against the previous run") -> str | None:
    """Why the module fails for this report, if it does: a failed check, or regressions when they fail the run."""
    failures = [check["name"] for check in report["checks"] if not check["ok"]]
    if failures:
        return "%s: %s: %s (report %s)" % (host, failed, ", ".join(failures), markdown)
    if report["regressions"] and fail_on_regression:
        return "%s: %s: %s (report %s)" % (host, regressed, "; ".join(report["regressions"]), markdown)
    return None


def write_report(directory: str, run: str, report: dict[str, Any],
                 markdown: Callable[[dict[str, Any], str | None], str] = render_markdown) -> None:
    """<run>.json, .md (rendered by `markdown`) and (with benchmarks) .svg, each written whole, and the same as
    latest.*."""
    os.makedirs(directory, exist_ok=True)
    svg_name = run + ".svg" if report["bench"] else None
    outputs = {".json": json.dumps(report, indent=2, sort_keys=True) + "\n", ".md": markdown(report, svg_name)}
    if svg_name:
        outputs[".svg"] = render_svg(report)
    for suffix, text in outputs.items():
        for name in (run, "latest"):
            write_atomically(os.path.join(directory, name + suffix), text)


def conclude(module: Any, directory: str, report: dict[str, Any],
             markdown: Callable[[dict[str, Any], str | None], str] = render_markdown, *, returned: tuple[str, ...] = (),
             **wording: str) -> None:
    """Ends a report module: writes the report (not in check mode), then fails naming the Markdown report when
    `failure` says so, else exits; the result names the files and carries report[key] for each returned key."""
    params = module.params
    base = os.path.join(directory, params["run"])
    result = {"report": base + ".json", "markdown": base + ".md", "ok": report["ok"],
              "regressions": report["regressions"], "changed": not module.check_mode,
              **{key: report[key] for key in returned}}
    if not module.check_mode:
        write_report(directory, params["run"], report, markdown)
    message = failure(params["host"], report, result["markdown"], params["fail_on_regression"], **wording)
    if message:
        module.fail_json(msg=message, **result)
    module.exit_json(**result)
