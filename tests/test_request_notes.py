"""Per-request facts live in one typed RequestNotes, never as ad-hoc request attributes."""

from __future__ import annotations

import gc
import re
from pathlib import Path

from django.test import RequestFactory

from keyhouse.request_notes import RequestNotes, _notes

SRC = Path(__file__).resolve().parents[1] / "src" / "keyhouse"
AD_HOC = re.compile(r"setattr\(request\b|request\._keyhouse|getattr\(request, \"_")


def test_no_ad_hoc_request_attributes_in_src() -> None:
    found = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if AD_HOC.search(line)
    ]
    assert found == []


def test_notes_are_per_request_and_die_with_it() -> None:
    first, second = RequestFactory().get("/"), RequestFactory().get("/")
    RequestNotes.get_notes(first).processed_params.add("username")
    assert RequestNotes.get_notes(first) is RequestNotes.get_notes(first)
    assert RequestNotes.get_notes(second).processed_params == set()
    gc.collect()  # earlier tests' unreachable requests must not be collected in the count below
    before = len(_notes)
    del first
    gc.collect()
    assert len(_notes) == before - 1
