# Copyright: rosenblatt developers
# MIT License
"""Ansible callback: at the end of a run, one line per stage (playbook file) with its wall time and task counts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: stage_summary
type: aggregate
short_description: Wall time and changed/failed counts per stage at the end of a run
description:
  - Groups the plays of a run by the playbook file they come from (site.yml imports one per stage) and
    prints, after the recap, each stage's wall time and how many tasks were ok, changed, failed or skipped
    over all hosts. A stage with nothing to do shows C(changed=0) on its own line, which the one recap of
    a site.yml run cannot show.
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
author:
  - rosenblatt developers
"""

import os
import time
from collections import Counter

from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import TaskResult
from ansible.playbook.play import Play
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "rosenblatt.pipeline.stage_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._stages: dict[str, dict] = {}
        self._current: dict | None = None

    def _close_current(self) -> None:
        if self._current is not None and self._current["started"] is not None:
            self._current["seconds"] += time.monotonic() - self._current["started"]
            self._current["started"] = None

    def v2_playbook_on_play_start(self, play: Play) -> None:
        self._close_current()
        path = (play.get_path() or "").rsplit(":", 1)[0]
        stage = os.path.basename(path) or play.get_name()
        self._current = self._stages.setdefault(stage, {"seconds": 0.0, "started": None, "counts": Counter()})
        self._current["started"] = time.monotonic()

    def _count(self, outcome: str) -> None:
        if self._current is not None:
            self._current["counts"][outcome] += 1

    def v2_runner_on_ok(self, result: TaskResult) -> None:
        self._count("changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: TaskResult, ignore_errors: bool = False) -> None:
        self._count("ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: TaskResult) -> None:
        self._count("skipped")

    def v2_runner_on_unreachable(self, result: TaskResult) -> None:
        self._count("unreachable")

    def v2_playbook_on_stats(self, stats: AggregateStats) -> None:
        self._close_current()
        if not self._stages:
            return
        self._display.display("STAGES " + "*" * 73)
        for stage, record in self._stages.items():
            counts = record["counts"]
            self._display.display("%-22s %8.1f s   ok=%-4d changed=%-4d failed=%-3d skipped=%d" % (
                stage, record["seconds"], counts["ok"] + counts["changed"], counts["changed"],
                counts["failed"] + counts["unreachable"], counts["skipped"]))
