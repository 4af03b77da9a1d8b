# Copyright: rosenblatt developers
# MIT License
"""The board bench: what docs/hardware-validation.md (B1-B3) measures on a board, as a plan of commands and as
one report.

`plan` lists the commands (npu-probe, test-backend-ops -o MUL_MAT per precision, llama-bench per configuration,
the MIN_BATCH sweep, the wave sweep, llama-perplexity per configuration), each with its configuration's
environment. `build` turns their raw outputs (llama-bench -o json, test-backend-ops' summary, llama-perplexity's
final estimate, npu-probe --json, the GGML_RKNPU_STATS counters) and the board's facts into one report: checks,
figures, the defaults the figures pick, and the comparison with the host's previous report
(inference_report.compare).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_runs import (
    command_outcome,
    npu_backend,
    rknpu_environment,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import (
    ReportError,
    _cell,
    compare,
    parse_llama_bench,
    parse_perplexity,
)

REFERENCE = "CPU"
FP16 = "RKNPU FP16"
OP_TEST_LINE = re.compile(r"^\s*(\d+)/(\d+) tests passed", re.MULTILINE)
NOT_BOARD_FIGURES = "NOT BOARD FIGURES"


def int8_config(group: int) -> str:
    return "RKNPU INT8 per-row" if group == 0 else "RKNPU INT8 g%d" % group


def sweep_config(config: str, batch: int) -> str:
    return "%s ub%d" % (config, batch)


def wave_config(rows: int) -> str:
    return "%s waves of %d" % (FP16, rows)


def configurations(int8_groups: list[int]) -> dict[str, dict[str, str]]:
    """Each configuration's backend settings: CPU-only, RKNPU FP16, RKNPU INT8 per K group (0: one scale per row)."""
    configs: dict[str, dict[str, str]] = {REFERENCE: {}, FP16: {"GGML_RKNPU_PRECISION": "fp16"}}
    for group in int8_groups:
        configs[int8_config(group)] = {"GGML_RKNPU_PRECISION": "int8", "GGML_RKNPU_INT8_GROUP": str(group)}
    return configs


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse sweep values the backend would not take, naming them (GGML_RKNPU_INT8_GROUP: 0 or a multiple of 32
    up to 4096, docs/ggml-rknpu.md; each batch from 1 to the prompt length)."""
    npu_backend(settings["backend"])
    bad_groups = [g for g in settings["int8_groups"] if g != 0 and (g % 32 or not 32 <= g <= 4096)]
    if bad_groups:
        raise ReportError("INT8 K groups (board_bench_int8_groups) %s: each must be 0 or a multiple of 32 from 32 "
                          "to 4096" % bad_groups)
    bad_batches = [b for b in settings["min_batches"] if not 1 <= b <= settings["prompt"]]
    if bad_batches:
        raise ReportError("MIN_BATCH sweep values (board_bench_min_batches) %s: each must be from 1 to the prompt "
                          "length %d" % (bad_batches, settings["prompt"]))
    bad_waves = [r for r in settings["wave_rows"] if not 1 <= r <= settings["prompt"]]
    if bad_waves:
        raise ReportError("wave sweep values (board_bench_wave_rows) %s: each must be from 1 to the prompt length %d"
                          % (bad_waves, settings["prompt"]))
    bad_precisions = [p for p in settings["op_test_precisions"] if p not in ("fp16", "int8")]
    if bad_precisions:
        raise ReportError("op test precisions (board_bench_op_test_precisions) %s: each must be fp16 or int8"
                          % bad_precisions)


def plan(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every command of the bench, in order, each {id, kind, config, argv, environment}: argv without the bounds
    (board_runs.command_bounds), RKNPU runs writing their counters to <workdir>/<id>.json."""
    check_settings(settings)
    binary = settings["runtime_path"] + "/bin/"
    rknpu = rknpu_environment(settings["runtime_path"], settings["backend"])
    model = ["-m", settings["model"], "-t", str(settings["threads"])]
    runs: list[dict[str, Any]] = []

    def add(kind: str, config: str, argv: list[str], backend: dict[str, str] | None, stats: bool = True) -> None:
        run_id = "%s-%d" % (kind, len(runs))
        environment = {} if backend is None else {**rknpu, **backend}
        if backend is not None and stats:
            environment["GGML_RKNPU_STATS"] = "%s/%s.json" % (settings["workdir"], run_id)
        runs.append({"id": run_id, "kind": kind, "config": config, "argv": argv, "environment": environment})

    if settings["probe"]:
        add("npu-probe", "NPU", [binary + "npu-probe", "--json", "--fp16"], {}, stats=False)
    for precision in settings["op_test_precisions"]:
        add("op-test", "RKNPU %s" % precision.upper(), [binary + "test-backend-ops", "-b", "RKNPU", "-o", "MUL_MAT"],
            {"GGML_RKNPU_MIN_BATCH": "0", "GGML_RKNPU_PRECISION": precision}, stats=False)
    configs = configurations(settings["int8_groups"])
    for config, backend in configs.items():
        sizes = ["-p", str(settings["prompt"]), "-n", str(settings["generate"]), "-r", str(settings["repetitions"])]
        add("llama-bench", config, [binary + "llama-bench", *model, *sizes, "-o", "json"],
            None if config == REFERENCE else backend)
    for batch in settings["min_batches"]:
        sizes = ["-p", str(settings["prompt"]), "-n", "0", "-b", str(batch), "-ub", str(batch),
                 "-r", str(settings["sweep_repetitions"]), "-o", "json"]
        add("sweep", sweep_config(REFERENCE, batch), [binary + "llama-bench", *model, *sizes], None)
        add("sweep", sweep_config(FP16, batch), [binary + "llama-bench", *model, *sizes],
            {**configs[FP16], "GGML_RKNPU_MIN_BATCH": str(batch)})
    for rows in settings["wave_rows"]:
        sizes = ["-p", str(settings["prompt"]), "-n", "0", "-r", str(settings["sweep_repetitions"]), "-o", "json"]
        add("wave-sweep", wave_config(rows), [binary + "llama-bench", *model, *sizes],
            {**configs[FP16], "GGML_RKNPU_WAVE_ROWS": str(rows)})
    chunks = ["--chunks", str(settings["perplexity_chunks"])] if settings["perplexity_chunks"] > 0 else []
    for config, backend in configs.items():
        text = ["-f", settings["perplexity_file"], "-c", str(settings["perplexity_context"])]
        add("perplexity", config, [binary + "llama-perplexity", *model, *text, *chunks],
            None if config == REFERENCE else backend)
    return runs


def parse_op_test(text: str, config: str) -> dict[str, Any]:
    """test-backend-ops' summary: the last 'N/M tests passed' line (ggml prints one per backend tested)."""
    found = OP_TEST_LINE.findall(text)
    if not found:
        raise ReportError("test-backend-ops (%s) printed no 'tests passed' line" % config)
    passed, total = (int(value) for value in found[-1])
    return {"config": config, "passed": passed, "total": total}


def parse_probe(text: str) -> dict[str, Any]:
    """npu-probe --json: the device, and per core and precision whether the self-test GEMM was exact."""
    try:
        probe = json.loads(text)
        cores = [{"precision": precision, "core": core["core"], "functional": bool(core["functional"]),
                  "max_abs_error": core["max_abs_error"], "gops": core.get("gops"), "error": core.get("error")}
                 for precision, key in (("int8", "cores"), ("fp16", "cores_fp16")) for core in probe.get(key, [])]
        return {"backend": probe["backend"], "device": probe["device"], "driver": probe["driver"].get("desc", ""),
                "ok": bool(probe["ok"]), "cores": cores,
                "all_cores_gops": {"int8": probe.get("all_cores", {}).get("gops"),
                                   "fp16": probe.get("all_cores_fp16", {}).get("gops")}}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError("npu-probe output is not its JSON: %s" % exc) from None


def _by_kind(runs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [run for run in runs if run["item"]["kind"] == kind and run.get("rc") == 0]


def pick_min_batch(bench: list[dict[str, Any]], batches: list[int], test: str) -> dict[str, Any] | None:
    """The smallest batch of the sweep at which RKNPU's prompt processing beats CPU-only's at the same batch."""
    speed = {(row["config"], row["test"]): row["tokens_per_s"] for row in bench}
    for batch in sorted(batches):
        cpu, npu = speed.get((sweep_config(REFERENCE, batch), test)), speed.get((sweep_config(FP16, batch), test))
        if cpu and npu and npu > cpu:
            return {"GGML_RKNPU_MIN_BATCH": batch, "rknpu_tokens_per_s": npu, "cpu_tokens_per_s": cpu}
    return None


def wave_sweep(bench: list[dict[str, Any]], counters: dict[str, Any], runs: list[dict[str, Any]],
               test: str) -> list[dict[str, Any]]:
    """Each wave size of the sweep that has a figure: its prompt processing, and from its counters the share of
    the NPU calls' time with no job in flight (the CPU's work the waves did not hide)."""
    speed = {row["config"]: row["tokens_per_s"] for row in bench if row["test"] == test}
    return [{"GGML_RKNPU_WAVE_ROWS": int(run["item"]["environment"]["GGML_RKNPU_WAVE_ROWS"]),
             "tokens_per_s": speed[run["item"]["config"]],
             "exposed_share": exposed_share(counters.get(run["item"]["id"]))}
            for run in _by_kind(runs, "wave-sweep") if run["item"]["config"] in speed]


def exposed_share(stats: dict[str, Any] | None) -> float | None:
    """Of the NPU calls' time, the share with no job in flight (None: counters without it, an older backend)."""
    if not stats or not stats.get("npu_seconds") or "npu_exposed_seconds" not in stats:
        return None
    return stats["npu_exposed_seconds"] / stats["npu_seconds"]


def pick_precision(bench: list[dict[str, Any]], perplexity: dict[str, dict[str, float]],
                   configs: dict[str, dict[str, str]], test: str, bound: float) -> dict[str, Any]:
    """Among the RKNPU configurations whose perplexity is within the bound of CPU-only's, the one with the best
    prompt processing; each other one with why it was not picked."""
    speed = {row["config"]: row["tokens_per_s"] for row in bench if row["test"] == test}
    base = perplexity.get(REFERENCE)
    candidates, refused = [], {}
    for config in configs:
        if config == REFERENCE:
            continue
        if config not in speed:
            refused[config] = "no %s figure" % test
        elif not base or config not in perplexity:
            refused[config] = "no perplexity figure" + ("" if base else " for CPU-only")
        else:
            difference = abs(perplexity[config]["ppl"] - base["ppl"]) / base["ppl"]
            if difference > bound:
                refused[config] = "perplexity %+.2f%% off CPU-only's, beyond the bound of %.2f%%" % (
                    difference * 100, bound * 100)
            else:
                candidates.append((speed[config], -difference, config))
    if not candidates:
        return {"pick": None, "refused": refused}
    tokens_per_s, negative_difference, config = max(candidates)  # on equal speed, the closer perplexity
    difference = -negative_difference
    for other_speed, _, other in candidates:
        if other != config:
            refused[other] = "%s %.2f t/s, below %.2f" % (test, other_speed, tokens_per_s)
    return {"pick": {"config": config, "settings": configs[config], "tokens_per_s": tokens_per_s,
                     "perplexity_difference": round(difference, 6)}, "refused": refused}


def build(params: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The report of one bench run from the registered results of the plan's commands (each with its plan entry as
    `item`) and the counters each RKNPU run wrote (id -> JSON text)."""
    runs, counters = params["results"], params["counters"]
    checks = []
    for run in runs:
        outcome = command_outcome(run, params["command_seconds"], params["memory_mib"])
        checks.append({"name": "%s %s" % (run["item"]["kind"], run["item"]["config"]), **outcome})
    probe = None
    for run in _by_kind(runs, "npu-probe"):
        probe = parse_probe(run["stdout"])
        bad = ["%s core %d" % (core["precision"], core["core"]) for core in probe["cores"]
               if not core["functional"] or (core["precision"] == "int8" and core["max_abs_error"] != 0)]
        checks.append({"name": "npu-probe self-test per core", "ok": probe["ok"] and not bad,
                       "detail": "not exact: %s" % ", ".join(bad) if bad else
                       "%d core(s) exact (int8) and functional (fp16)" % len({c["core"] for c in probe["cores"]})})
    op_tests = [parse_op_test(run["stdout"], run["item"]["config"]) for run in _by_kind(runs, "op-test")]
    checks += [{"name": "test-backend-ops MUL_MAT %s" % test["config"], "ok": 0 < test["passed"] == test["total"],
                "detail": "%d/%d tests passed" % (test["passed"], test["total"])} for test in op_tests]
    stats = {}
    for run in runs:
        if run["item"]["environment"].get("GGML_RKNPU_STATS"):
            text = counters.get(run["item"]["id"])
            stats[run["item"]["id"]] = json.loads(text) if text else None
            checks.append({"name": "RKNPU offload (%s %s)" % (run["item"]["kind"], run["item"]["config"]),
                           "ok": bool(text) and stats[run["item"]["id"]]["npu_ops"] > 0,
                           "detail": "%d MUL_MAT on the NPU (%s, batches below %d left to the CPU)" % (
                               stats[run["item"]["id"]]["npu_ops"], stats[run["item"]["id"]]["precision"],
                               stats[run["item"]["id"]]["min_batch"]) if text else
                           "no counters: the backend was not loaded"})
    bench = [row for run in _by_kind(runs, "llama-bench") + _by_kind(runs, "sweep") + _by_kind(runs, "wave-sweep")
             for row in parse_llama_bench(run["stdout"], run["item"]["config"])]
    perplexity = {run["item"]["config"]: parse_perplexity(run["stdout"] + "\n" + run.get("stderr", ""))
                  for run in _by_kind(runs, "perplexity")}
    configs = configurations(params["int8_groups"])
    test = "pp%d" % params["prompt"]
    waves = wave_sweep(bench, stats, runs, test)
    picks = {"min_batch": pick_min_batch(bench, params["min_batches"], test),
             "wave_rows": max(waves, key=lambda point: point["tokens_per_s"]) if waves else None,
             "precision": pick_precision(bench, perplexity, configs, test, params["perplexity_bound"]),
             "test": test, "perplexity_bound": params["perplexity_bound"]}
    backend = npu_backend(params["backend"])
    devices = [value["device"] for value in stats.values() if value]
    report = {**params["meta"], "host": params["host"], "run": params["run"], "reference": REFERENCE,
              "npu_backend": params["backend"],
              "board_figures": params["backend"] == "rocket",
              "device_description": " ".join(filter(None, [backend["report_prefix"],
                                                            devices[0] if devices else "RKNPU backend not loaded"])),
              "sizes": {key: params[key] for key in ("prompt", "generate", "repetitions", "sweep_repetitions",
                                                     "perplexity_context", "perplexity_chunks")},
              "checks": checks, "probe": probe, "op_tests": op_tests, "bench": bench, "counters": stats,
              "wave_sweep": waves,
              "perplexity": perplexity, "picks": picks, "ok": all(check["ok"] for check in checks)}
    report["regressions"] = compare(previous, report, params["tolerance"]) + _pick_changes(previous, picks)
    return report


def _pick_summary(picks: dict[str, Any]) -> dict[str, Any]:
    precision = (picks.get("precision") or {}).get("pick")
    return {"min_batch": (picks.get("min_batch") or {}).get("GGML_RKNPU_MIN_BATCH"),
            "wave_rows": (picks.get("wave_rows") or {}).get("GGML_RKNPU_WAVE_ROWS"),
            "precision": precision["config"] if precision else None}


def _pick_changes(previous: dict[str, Any] | None, picks: dict[str, Any]) -> list[str]:
    """A default the previous run's figures picked and this run's do not (the regressions list says so)."""
    if not previous or "picks" not in previous:
        return []
    before, now = _pick_summary(previous["picks"]), _pick_summary(picks)
    return ["the figures pick %s %s, the previous run's picked %s" % (name, now[name], before[name])
            for name in ("min_batch", "wave_rows", "precision")
            if name in previous["picks"] and before[name] != now[name]]


def render_markdown(report: dict[str, Any], svg_name: str | None) -> str:
    board, sizes = report.get("board", {}), report["sizes"]
    lines = ["# Board bench: %s, %s" % (report["host"], report["run"]), ""]
    if not report["board_figures"]:
        lines += ["**%s**: the NPU here is %s; these figures measure the controller or the emulation, not the "
                  "RK3588 NPU." % (NOT_BOARD_FIGURES, npu_backend(report["npu_backend"])["plan"]), ""]
    lines += [
        "**Result: %s**%s" % ("every command finished and every check passed" if report["ok"] else "FAILED checks",
                              "; %d change(s) against the previous run" % len(report["regressions"])
                              if report["regressions"] else ""),
        "", "| | |", "|---|---|",
        "| NPU device | **%s** |" % _cell(report["device_description"]),
        "| board | %s, kernel %s |" % (_cell(board.get("model")), _cell(board.get("kernel"))),
        "| CPU governor | %s |" % _cell(board.get("cpu_governor")),
        "| CPUs, threads | %s, %s |" % (_cell(board.get("cpus", "all")), _cell(board.get("threads"))),
        "| NPU clock | %s |" % _cell(board.get("npu_clock_hz") or "not readable"),
        "| model | %s (sha256 %s) |" % (_cell(report.get("model", {}).get("name")),
                                      _cell(report.get("model", {}).get("sha256"))),
        "| llama.cpp | %s |" % _cell(report.get("runtime", {}).get("llama_cpp")),
        "| sizes | pp%d/tg%d x%d, sweep x%d, perplexity context %d, %s chunks |" % (
            sizes["prompt"], sizes["generate"], sizes["repetitions"], sizes["sweep_repetitions"],
            sizes["perplexity_context"], sizes["perplexity_chunks"] or "all"),
        "", "## Defaults the figures pick", ""]
    picks = report["picks"]
    batch = picks["min_batch"]
    lines.append("- `GGML_RKNPU_MIN_BATCH=%d`: the smallest batch of the sweep at which RKNPU's %s beats CPU-only's "
                 "(%.2f vs %.2f t/s)." % (batch["GGML_RKNPU_MIN_BATCH"], picks["test"], batch["rknpu_tokens_per_s"],
                                         batch["cpu_tokens_per_s"]) if batch else
                 "- `GGML_RKNPU_MIN_BATCH`: none: RKNPU's %s beats CPU-only's at no batch of the sweep."
                 % picks["test"])
    waves = picks.get("wave_rows")
    if waves:
        lines.append("- `GGML_RKNPU_WAVE_ROWS=%d`: the best %s of the wave sweep (%.2f t/s)%s." % (
            waves["GGML_RKNPU_WAVE_ROWS"], picks["test"], waves["tokens_per_s"],
            "; %.3f of its NPU calls' time had no job in flight" % waves["exposed_share"]
            if waves["exposed_share"] is not None else ""))
    chosen = picks["precision"]["pick"]
    lines.append("- %s: the best %s (%.2f t/s) among the RKNPU configurations within %.2f%% of CPU-only's "
                 "perplexity (%+.2f%%)." % (
                     " ".join("`%s=%s`" % item for item in chosen["settings"].items()), picks["test"],
                     chosen["tokens_per_s"], picks["perplexity_bound"] * 100, chosen["perplexity_difference"] * 100)
                 if chosen else "- precision: none: no RKNPU configuration has both figures within the bound.")
    lines += ["  - not %s: %s" % (config, why) for config, why in picks["precision"]["refused"].items()]
    lines += ["", "## Checks", "", "| check | result | detail |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (_cell(c["name"]), "ok" if c["ok"] else "**FAILED**", _cell(c["detail"]))
              for c in report["checks"]]
    if report["probe"]:
        lines += ["", "## npu-probe (%s, %s)" % (_cell(report["probe"]["device"]), _cell(report["probe"]["driver"])),
                  "", "| precision | core | functional | max abs error | GOPS |", "|---|---|---|---|---|"]
        lines += ["| %s | %d | %s | %s | %s |" % (c["precision"], c["core"], c["functional"], c["max_abs_error"],
                                                 c["gops"]) for c in report["probe"]["cores"]]
    if report["op_tests"]:
        lines += ["", "## test-backend-ops -o MUL_MAT", "", "| configuration | passed |", "|---|---|"]
        lines += ["| %s | %d/%d |" % (t["config"], t["passed"], t["total"]) for t in report["op_tests"]]
    base = {row["test"]: row["tokens_per_s"] for row in report["bench"] if row["config"] == REFERENCE}
    main = [row for row in report["bench"] if " ub" not in row["config"] and " waves of " not in row["config"]]
    if main:
        lines += ["", "## llama-bench", "", "| configuration | test | tokens/s | ± | vs CPU |", "|---|---|---|---|---|"]
        lines += ["| %s | %s | %.2f | %.2f | %s |" % (row["config"], row["test"], row["tokens_per_s"], row["stddev"],
                                                     "%.2fx" % (row["tokens_per_s"] / base[row["test"]])
                                                     if row["config"] != REFERENCE and base.get(row["test"]) else "")
                  for row in main]
    speed = {row["config"]: row["tokens_per_s"] for row in report["bench"] if " ub" in row["config"]}
    batches = sorted({int(config.rsplit(" ub", 1)[1]) for config in speed})
    if batches:
        lines += ["", "## MIN_BATCH sweep (%s at -b = -ub = the batch)" % picks["test"], "",
                  "| batch | CPU t/s | RKNPU FP16 t/s | RKNPU / CPU |", "|---|---|---|---|"]
        for batch_size in batches:
            cpu, npu = speed.get(sweep_config(REFERENCE, batch_size)), speed.get(sweep_config(FP16, batch_size))
            lines.append("| %d | %s | %s | %s |" % (batch_size, "%.2f" % cpu if cpu else "-",
                                                    "%.2f" % npu if npu else "-",
                                                    "%.2fx" % (npu / cpu) if cpu and npu else ""))
    if report.get("wave_sweep"):
        lines += ["", "## Wave sweep (RKNPU FP16 %s, GGML_RKNPU_WAVE_ROWS)" % picks["test"], "",
                  "| rows per wave | t/s | NPU call time with no job in flight |", "|---|---|---|"]
        lines += ["| %d | %.2f | %s |" % (point["GGML_RKNPU_WAVE_ROWS"], point["tokens_per_s"],
                                         "-" if point["exposed_share"] is None else "%.3f" % point["exposed_share"])
                  for point in report["wave_sweep"]]
    if svg_name:
        lines += ["", "![tokens per second per configuration](%s)" % svg_name]
    if report["perplexity"]:
        reference = report["perplexity"].get(REFERENCE)
        lines += ["", "## Perplexity", "", "| configuration | PPL | vs CPU |", "|---|---|---|"]
        lines += ["| %s | %.4f ± %.4f | %s |" % (config, value["ppl"], value["error"],
                                                "%+.2f%%" % ((value["ppl"] / reference["ppl"] - 1) * 100)
                                                if reference and config != REFERENCE else "")
                  for config, value in report["perplexity"].items()]
    if report["regressions"]:
        lines += ["", "## Against the previous run", ""] + ["- " + _cell(r) for r in report["regressions"]]
    return "\n".join(lines) + "\n"
