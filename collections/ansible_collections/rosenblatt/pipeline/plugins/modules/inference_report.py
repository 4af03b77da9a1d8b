#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: turn a board's raw inference outputs into the verification report, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: inference_report
short_description: Write the verification report of one host and compare it with that host's previous one
description:
  - Runs on the controller (delegate it to localhost). Reads the raw outputs of llama.cpp's tools gathered on a
    board (llama-bench JSON per configuration, llama-perplexity output per configuration, greedy completions per
    configuration), derives the checks (output produced, greedy agreement with the reference configuration,
    perplexity within the bound), adds the caller's own checks, and writes
    C(<reports_dir>/<host>/<run>.json), C(.md) and C(.svg) plus C(latest.*).
  - Compares with the host's previous C(latest.json). A benchmark slower than the tolerance allows, or a check
    that passed before and fails now, is a regression. The module fails when a check fails, and on regressions
    when O(fail_on_regression) is true; the report is written either way.
options:
  meta:
    description: C(device) (with C(description)), C(board), C(model), C(runtime) facts for the report header.
    type: dict
    required: true
  reference:
    description: Configuration the others are compared with (the CPU-only run).
    type: str
    default: CPU
  bench:
    description: llama-bench C(-o json) output per configuration.
    type: dict
    default: {}
  perplexity:
    description: llama-perplexity output per configuration.
    type: dict
    default: {}
  completions:
    description: Greedy completion texts per configuration, one per prompt, in the same prompt order.
    type: dict
    default: {}
  agreement_chars:
    description: Characters each completion must share with the reference from its start (or all, when shorter).
    type: int
    default: 32
  perplexity_bound:
    description: Largest relative perplexity difference to the reference that passes.
    type: float
    default: 0.02
  checks:
    description: Further checks made by the caller, each C({name, ok, detail}).
    type: list
    elements: dict
    default: []
  fail_on_regression:
    description: Fail when the comparison finds a regression.
    type: bool
    default: true
extends_documentation_fragment:
  - rosenblatt.pipeline.report
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Write the report
  rosenblatt.pipeline.inference_report:
    host: "{{ inventory_hostname }}"
    run: "{{ verify_run }}"
    reports_dir: "{{ rosenblatt_reports_dir }}/verify"
    meta: "{{ verify_meta }}"
    bench: {CPU: "{{ verify_bench_cpu.stdout }}", RKNPU: "{{ verify_bench_npu.stdout }}"}
  delegate_to: localhost
"""

RETURN = r"""
report:
  description: Path of the JSON report.
  type: str
  returned: always
markdown:
  description: Path of the Markdown report.
  type: str
  returned: always
ok:
  description: Whether every check passed.
  type: bool
  returned: always
regressions:
  description: Regressions against the previous report.
  type: list
  elements: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import (
    REPORT_SPEC,
    ReportError,
    build_report,
    compare,
    conclude,
    derived_checks,
    parse_llama_bench,
    previous_report,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **REPORT_SPEC,
            "meta": {"type": "dict", "required": True},
            "reference": {"type": "str", "default": "CPU"},
            "bench": {"type": "dict", "default": {}},
            "perplexity": {"type": "dict", "default": {}},
            "completions": {"type": "dict", "default": {}},
            "agreement_chars": {"type": "int", "default": 32},
            "perplexity_bound": {"type": "float", "default": 0.02},
            "checks": {"type": "list", "elements": "dict", "default": []},
            "fail_on_regression": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        bench = [row for config, text in params["bench"].items() for row in parse_llama_bench(text, config)]
        checks, perplexity = derived_checks(params)
    except ReportError as exc:
        module.fail_json(msg="%s: %s" % (params["host"], exc))
    meta = dict(params["meta"], host=params["host"], run=params["run"], reference=params["reference"])
    report = build_report(meta, bench, params["checks"] + checks, perplexity, params["completions"])
    directory = os.path.join(params["reports_dir"], params["host"])
    report["regressions"] = compare(previous_report(directory), report, params["tolerance"])
    conclude(module, directory, report)


if __name__ == "__main__":
    main()
