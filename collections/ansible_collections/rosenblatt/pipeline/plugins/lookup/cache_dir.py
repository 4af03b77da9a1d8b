# Copyright: rosenblatt developers
# MIT License
"""Lookup `rosenblatt.pipeline.cache_dir`: the controller's cache root (module_utils/cache_root.py), with
each term appended as a subfolder: `lookup('rosenblatt.pipeline.cache_dir', 'images')`."""

from __future__ import annotations

from typing import Any

from ansible.plugins.lookup import LookupBase

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.cache_root import cache_root

DOCUMENTATION = r"""
name: cache_dir
short_description: the controller's rosenblatt cache folder
description:
  - $ROSENBLATT_CACHE, else ~/.cache/rosenblatt, with the terms appended as subfolders.
options:
  _terms:
    description: subfolders, in order
    required: false
"""

RETURN = r"""
_raw:
  description: the folder, one element
  type: list
  elements: path
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        return [str(cache_root().joinpath(*(str(term) for term in terms)))]
