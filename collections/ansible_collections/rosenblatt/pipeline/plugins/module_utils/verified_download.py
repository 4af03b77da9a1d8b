# Copyright: rosenblatt developers
# MIT License
"""Download a large file once, resumably, and keep it only if its sha256 matches.

The file is written to `<dest>.part` and renamed to `<dest>` only after the whole content
hashed to the expected sha256, so a file at `dest` is always a verified one. An interrupted
download resumes from the `.part` file with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

CHUNK = 1 << 20
MIB = 1 << 20


class DownloadError(Exception):
    """An expected failure, with a message for a person (no traceback)."""


@dataclass
class Outcome:
    changed: bool
    action: str  # "present", "downloaded", "resumed", "copied", "would-download"
    size: int
    resumed_from: int = 0
    removed_bad: bool = False


def _hash_file(path: str) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest


def sha256_of(path: str) -> str:
    return _hash_file(path).hexdigest()


def free_bytes(directory: str) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def _check_space(directory: str, needed: int, reserve: int) -> None:
    available = free_bytes(directory)
    if needed + reserve > available:
        raise DownloadError("not enough space in %s: needs %d MiB (+%d MiB reserve), %d MiB free"
                            % (directory, -(-needed // MIB), reserve // MIB, available // MIB))


def _local_source(url: str) -> str | None:
    if url.startswith("/"):
        return url
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else None


def _finish(part: str, dest: str, digest: str, expected: str) -> None:
    if digest != expected:
        os.unlink(part)
        raise DownloadError("sha256 mismatch for %s: expected %s, got %s; the download was removed"
                            % (dest, expected, digest))
    with open(part, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(part, dest)
    directory = os.open(os.path.dirname(dest) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _download_http(url: str, part: str, reserve_bytes: int, timeout: float) -> tuple[str, int]:
    """Fill `part` from `url`, resuming from its current size; returns (sha256 of the whole, resumed-from offset)."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": "bytes=%d-" % offset} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file already holds everything the server has
            return sha256_of(part), offset
        raise DownloadError("HTTP %d %s for %s" % (exc.code, exc.reason, url)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError("cannot reach %s: %s" % (url, getattr(exc, "reason", exc))) from None
    with response:
        if response.status != 206:
            offset = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else 0
        _check_space(os.path.dirname(part), remaining, reserve_bytes)
        total = offset + remaining
        digest = _hash_file(part) if offset else hashlib.sha256()
        written = offset
        with open(part, "ab" if offset else "wb") as handle:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    digest.update(block)
                    written += len(block)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError("download of %s interrupted at %d of %d bytes (%s); run again to resume"
                                    % (url, written, total, exc)) from None
    if remaining and written != total:
        raise DownloadError("download of %s ended at %d of %d bytes; run again to resume" % (url, written, total))
    return digest.hexdigest(), offset


def fetch(url: str, sha256: str, dest: str, *, reserve_bytes: int = 64 * MIB, timeout: float = 60.0,
          check_mode: bool = False) -> Outcome:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise DownloadError("sha256 %r is not 64 hex digits" % sha256)
    source = _local_source(url)
    if source is None and urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise DownloadError("source %r is not an http(s) URL, a file:// URL or an absolute path" % url)
    expected = sha256.lower()
    removed_bad = False
    if os.path.exists(dest):
        if sha256_of(dest) == expected:
            return Outcome(changed=False, action="present", size=os.path.getsize(dest))
        if check_mode:
            return Outcome(changed=True, action="would-download", size=0, removed_bad=True)
        os.unlink(dest)  # never leave a file that could be mistaken for the good one
        removed_bad = True
    if check_mode:
        return Outcome(changed=True, action="would-download", size=0)

    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    part = os.path.join(directory, os.path.basename(dest) + ".part")
    if source is not None:
        if not os.path.isfile(source):
            raise DownloadError("source file %s does not exist" % source)
        _check_space(directory, os.path.getsize(source), reserve_bytes)
        shutil.copyfile(source, part)
        digest, resumed_from, action = sha256_of(part), 0, "copied"
    else:
        digest, resumed_from = _download_http(url, part, reserve_bytes, timeout)
        action = "resumed" if resumed_from else "downloaded"
    _finish(part, dest, digest, expected)
    return Outcome(changed=True, action=action, size=os.path.getsize(dest), resumed_from=resumed_from,
                   removed_bad=removed_bad)
