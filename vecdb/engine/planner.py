"""The search planner: per query, pick how to honour a filter / tenant without losing recall.

Plans, from most to least selective filters:

- ``exact``: brute force over the matching rows. Perfect recall; cheap when few rows match.
- ``index+selector``: the approximate index searched with the matching rows as an id selector,
  widening ``ef_search`` / ``nprobe`` until ``k`` matches come back.
- ``index+postfilter``: the index searched unfiltered with over-fetch, then non-matching results
  dropped; used when most rows match, falling back to the selector plan if fewer than ``k`` remain.
"""

from __future__ import annotations

from dataclasses import dataclass

EXACT = "exact"
INDEX = "index"
INDEX_SELECTOR = "index+selector"
INDEX_POSTFILTER = "index+postfilter"
TENANT_TREE = "tenant-tree"


@dataclass(frozen=True)
class PlannerSettings:
    """Thresholds of the cost model (fractions of the indexed rows)."""

    # at or below this fraction of rows matching, scanning them exactly is cheaper than the index
    exact_fraction: float = 0.02
    # and always exact below this many matching rows
    exact_rows: int = 2_000
    # at or above this fraction, search unfiltered and drop the few non-matching results
    postfilter_fraction: float = 0.5
    # how far the selector plan may widen the index's search before falling back to exact
    max_widening: int = 16


@dataclass(frozen=True)
class Plan:
    """The chosen plan and the estimates behind it."""

    name: str
    selectivity: float
    reason: str


def choose(
    matching: int,
    indexed: int,
    k: int,
    *,
    filtered: bool,
    has_index: bool,
    settings: PlannerSettings = PlannerSettings(),
) -> Plan:
    """Return the plan for a query that ``matching`` of ``indexed`` rows may answer."""
    selectivity = matching / indexed if indexed else 0.0
    if not has_index:
        return Plan(EXACT, selectivity, "no index built: exact scan")
    if matching <= max(settings.exact_rows, k):
        return Plan(
            EXACT,
            selectivity,
            f"{matching} matching rows (<= {max(settings.exact_rows, k)}): "
            "exact scan is cheaper than the index",
        )
    if selectivity <= settings.exact_fraction:
        return Plan(
            EXACT,
            selectivity,
            f"selectivity {selectivity:.4f} <= {settings.exact_fraction}: "
            "exact scan of the matching rows is cheaper than the index",
        )
    if not filtered:
        return Plan(INDEX, selectivity, "no filter or tenant: plain index search")
    if selectivity >= settings.postfilter_fraction:
        return Plan(
            INDEX_POSTFILTER,
            selectivity,
            f"selectivity {selectivity:.3f} >= {settings.postfilter_fraction}: search, then filter",
        )
    return Plan(
        INDEX_SELECTOR,
        selectivity,
        f"selectivity {selectivity:.3f}: index search restricted to matching rows",
    )
