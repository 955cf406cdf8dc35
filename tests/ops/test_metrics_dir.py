"""``keyhouse serve``'s metrics directory: fresh for every run, set before prometheus loads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyhouse.ops import metrics_dir
from keyhouse.ops.metrics_dir import ENV, prepare_metrics_dir


@pytest.fixture
def no_env() -> Iterator[None]:
    """ENV unset during the test and after it, whatever the test set."""
    saved = os.environ.pop(ENV, None)
    try:
        yield
    finally:
        os.environ.pop(ENV, None)
        if saved is not None:
            os.environ[ENV] = saved


def test_refuses_when_prometheus_is_already_loaded(no_env: None) -> None:
    """Once prometheus_client is loaded, multiprocess mode can no longer start."""
    import prometheus_client  # noqa: F401

    with pytest.raises(RuntimeError, match=ENV):
        prepare_metrics_dir()
    assert ENV not in os.environ


def test_makes_and_removes_a_temporary_directory(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_dir, "prometheus_loaded", lambda: False)  # a fresh process
    on_exit = prepare_metrics_dir()
    path = Path(os.environ[ENV])
    assert path.is_dir() and not any(path.iterdir())
    on_exit(None)
    assert not path.exists()


def test_an_operators_directory_is_emptied_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counter files of an earlier run would add its counts to this run's."""
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(ENV, str(tmp_path))
    on_exit = prepare_metrics_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    on_exit(None)
    assert tmp_path.is_dir()
