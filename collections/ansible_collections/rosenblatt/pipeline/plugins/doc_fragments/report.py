# Copyright: rosenblatt developers
# MIT License
"""Documentation of the options every report module shares (module_utils.inference_report.REPORT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description: Inventory name of the board.
    type: str
    required: true
  run:
    description: Name of this run (a UTC timestamp).
    type: str
    required: true
  reports_dir:
    description: Controller folder for reports; one sub-folder per host.
    type: path
    required: true
  tolerance:
    description: Largest relative slow-down against the previous report that is not a regression.
    type: float
    default: 0.10
"""
