# Copyright: rosenblatt developers
# MIT License
"""The one rule for where rosenblatt caches sources, builds, images and models on the controller:
$ROSENBLATT_CACHE, else ~/.cache/rosenblatt. Roles read it through the `rosenblatt.pipeline.cache_dir`
lookup; the tools and tests import it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_root(environment: Mapping[str, str] | None = None) -> Path:
    environment = os.environ if environment is None else environment
    home = Path(environment.get("HOME") or Path.home())
    return Path(environment.get("ROSENBLATT_CACHE") or home / ".cache/rosenblatt")
