#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: turn a board bench's raw outputs into its report, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bench_report
short_description: Write the board bench report of one host, with the defaults its figures pick
description:
  - Runs on the controller (delegate it to localhost). Reads the registered results of the bench plan's commands
    (npu-probe C(--json), test-backend-ops C(-o MUL_MAT), llama-bench C(-o json) per configuration and per batch of
    the MIN_BATCH sweep and of the wave sweep, llama-perplexity per configuration) and the GGML_RKNPU_STATS counters
    of the RKNPU runs; writes C(<reports_dir>/<host>/<run>.json), C(.md) and C(.svg) (tokens per second per
    configuration) plus C(latest.*).
  - Picks the defaults the figures support (the smallest MIN_BATCH at which RKNPU beats CPU-only; the wave size
    with the best prompt processing; the precision and INT8 K group with the best prompt processing among those
    within the perplexity bound) and compares with the
    host's previous C(latest.json) (a figure slower than the tolerance allows, a check that passed and fails now,
    a different pick). Fails when a check fails, and on such changes when O(fail_on_regression) is true; the
    report is written either way.
options:
  meta:
    description: C(board), C(model), C(runtime) facts for the report header.
    type: dict
    required: true
  settings:
    description:
      - The plan's settings (C(backend), C(int8_groups), C(min_batches), C(wave_rows), C(prompt), C(generate),
        C(repetitions), C(sweep_repetitions), C(perplexity_context), C(perplexity_chunks)) and C(command_seconds),
        C(memory_mib).
    type: dict
    required: true
  results:
    description: The registered results of the plan's commands, each with its plan entry as C(item).
    type: list
    elements: dict
    required: true
  counters:
    description: The GGML_RKNPU_STATS JSON text each RKNPU run wrote, by run id.
    type: dict
    default: {}
  perplexity_bound:
    description: Largest relative perplexity difference to CPU-only a configuration may have to be picked.
    type: float
    required: true
  fail_on_regression:
    description: Fail when the comparison finds a regression.
    type: bool
    default: false
extends_documentation_fragment:
  - rosenblatt.pipeline.report
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Write the report
  rosenblatt.pipeline.bench_report:
    host: "{{ inventory_hostname }}"
    run: "{{ board_bench_run }}"
    reports_dir: "{{ rosenblatt_reports_dir }}/bench"
    meta: "{{ board_bench_meta }}"
    settings: "{{ board_bench_settings }}"
    results: "{{ board_bench_runs.results }}"
    perplexity_bound: 0.05
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
  description: Whether every command finished and every check passed.
  type: bool
  returned: always
picks:
  description: The defaults the figures pick (C(min_batch), C(precision)), each null when none.
  type: dict
  returned: always
regressions:
  description: Changes against the previous report.
  type: list
  elements: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_bench import build, render_markdown
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inference_report import (
    REPORT_SPEC,
    ReportError,
    conclude,
    previous_report,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **REPORT_SPEC,
            "meta": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
            "results": {"type": "list", "elements": "dict", "required": True},
            "counters": {"type": "dict", "default": {}},
            "perplexity_bound": {"type": "float", "required": True},
            "fail_on_regression": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    directory = os.path.join(params["reports_dir"], params["host"])
    try:
        report = build({**params["settings"], **params}, previous_report(directory))
    except (ReportError, KeyError, ValueError) as exc:  # ValueError: a counters file that is not JSON
        module.fail_json(msg="%s: the bench outputs cannot be read: %s" % (params["host"], exc))
    conclude(module, directory, report, render_markdown, returned=("picks",), failed="bench checks failed",
             regressed="changes against the previous run")


if __name__ == "__main__":
    main()
