"""verified_download against a real HTTP server on loopback: resume, mismatch, truncation, space."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.verified_download import DownloadError, fetch
from tests.support.http_server import FileServer

MIB = 1 << 20


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "served" / "model.gguf"
    path.parent.mkdir()
    path.write_bytes(os.urandom(6 * MIB + 123))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_then_present(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = tmp_path / "cache" / "model.gguf"
    with FileServer(source) as server:
        first = fetch(server.url, digest, str(dest))
        second = fetch(server.url, digest, str(dest))
    assert (first.changed, first.action, first.size) == (True, "downloaded", source.stat().st_size)
    assert dest.read_bytes() == source.read_bytes()
    assert not Path(str(dest) + ".part").exists()
    assert (second.changed, second.action) == (False, "present")
    assert server.requests == [None]  # the second run did not download


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, _ = payload
    dest = tmp_path / "model.gguf"
    with FileServer(source) as server, pytest.raises(DownloadError, match=r"sha256 mismatch .* download was removed"):
        fetch(server.url, "0" * 64, str(dest))
    assert list(tmp_path.glob("model.gguf*")) == []


def test_a_bad_file_in_place_is_removed_and_replaced(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"not the model")
    with FileServer(source) as server:
        outcome = fetch(server.url, digest, str(dest))
    assert outcome.removed_bad
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_truncated_download_resumes_where_it_stopped(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = tmp_path / "model.gguf"
    part = Path(str(dest) + ".part")
    with FileServer(source) as server:
        server.cut_after = 2 * MIB
        with pytest.raises(DownloadError, match=r"run again to resume"):
            fetch(server.url, digest, str(dest))
        assert not dest.exists()
        assert part.stat().st_size == 2 * MIB
        outcome = fetch(server.url, digest, str(dest))
    assert (outcome.action, outcome.resumed_from) == ("resumed", 2 * MIB)
    assert server.requests == [None, f"bytes={2 * MIB}-"]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    assert not part.exists()


def test_server_without_range_support_restarts(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = tmp_path / "model.gguf"
    Path(str(dest) + ".part").write_bytes(source.read_bytes()[:MIB])
    with FileServer(source) as server:
        server.honour_range = False
        outcome = fetch(server.url, digest, str(dest))
    assert (outcome.action, outcome.resumed_from) == ("downloaded", 0)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_complete_part_file_is_finished_without_data(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = tmp_path / "model.gguf"
    Path(str(dest) + ".part").write_bytes(source.read_bytes())
    with FileServer(source) as server:
        outcome = fetch(server.url, digest, str(dest))
    assert outcome.action == "resumed"
    assert server.requests == [f"bytes={source.stat().st_size}-"]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_no_space_is_refused_before_writing(small_filesystem: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    dest = small_filesystem / "model.gguf"
    with FileServer(source) as server, pytest.raises(DownloadError, match=r"not enough space in .*: needs 7 MiB"):
        fetch(server.url, digest, str(dest), reserve_bytes=30 * MIB)
    assert list(small_filesystem.iterdir()) == []


def test_local_sources(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    by_path = fetch(str(source), digest, str(tmp_path / "a.gguf"))
    by_url = fetch(source.as_uri(), digest, str(tmp_path / "b.gguf"))
    assert by_path.action == by_url.action == "copied"
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(str(tmp_path / "nothing.gguf"), digest, str(tmp_path / "c.gguf"))


@pytest.mark.parametrize(("url", "sha256", "message"), [
    ("ftp://example.org/m.gguf", "a" * 64, "not an http"),
    ("http://127.0.0.1:9/m.gguf", "a" * 63, "not 64 hex digits"),
])
def test_bad_arguments_are_named(tmp_path: Path, url: str, sha256: str, message: str) -> None:
    with pytest.raises(DownloadError, match=message):
        fetch(url, sha256, str(tmp_path / "m.gguf"))


def test_missing_file_on_server(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    with FileServer(source) as server, pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + ".missing", digest, str(tmp_path / "m.gguf"))


def test_check_mode_downloads_nothing(tmp_path: Path, payload: tuple[Path, str]) -> None:
    source, digest = payload
    with FileServer(source) as server:
        outcome = fetch(server.url, digest, str(tmp_path / "cache" / "m.gguf"), check_mode=True)
    assert (outcome.changed, outcome.action) == (True, "would-download")
    assert server.requests == []
    assert not (tmp_path / "cache").exists()
