"""Fixtures of the retrieval unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "retrieval"


@pytest.fixture
def fixtures() -> Path:
    """The directory of the checked-in retrieval fixtures."""
    return FIXTURES
