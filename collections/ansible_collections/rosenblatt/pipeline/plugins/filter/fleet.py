# Copyright: rosenblatt developers
# MIT License
"""Filters for fleet reports: `rosenblatt.pipeline.fleet_drift` turns per-host facts and pins into the drift report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.fleet_drift import fleet_drift


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"fleet_drift": fleet_drift}
