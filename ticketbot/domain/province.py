"""Figures for the province, without personal data (SPEC §4b). Pure code.

An office's month becomes a summary (a JSON document: counts, medians, shares, never a
ticket, a NIK, a name or a phone); the province merges its offices' summaries of one month
into a ranking of its kab/kota.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ticketbot.domain.regions import KAB_KOTA, PROVINCES
from ticketbot.domain.report import MonthReport

FORMAT = "ticketbot-ringkasan-1"  # the summary's own version


def region_name(kode: str) -> str:
    """'12.73' -> 'Kota Sibolga' (the Kepmendagri 2025 table), else the code."""
    province = kode.partition(".")[0]
    if kode in KAB_KOTA:
        return KAB_KOTA[kode]
    return f"{kode} ({PROVINCES[province]})" if province in PROVINCES else kode


def known_region(kode: str) -> bool:
    """A kab/kota of the table in force (a retired Papua code is not: its office uses the
    new one)."""
    return kode in KAB_KOTA


def summary(
    report: MonthReport, office: str, kode_wilayah: str,
    unconfirmed_ages: Sequence[float],
) -> dict[str, Any]:  # fmt: skip
    """The month of one office as the province reads it."""
    entered = dict(report.entered)
    resyncs, sent = report.resyncs
    return {
        "format": FORMAT,
        "office": office,
        "kode_wilayah": kode_wilayah,
        "month": str(report.month),
        "complete": report.complete,
        "opened": report.opened,
        "closed": report.closed,
        "rejected": entered.get("rejected", 0),
        "cancelled": entered.get("cancelled", 0),
        "steps": [
            {
                "sop_step": s.sop_step,
                "handled": s.handled,
                "median_minutes": _round(s.median_minutes),
                "p90_minutes": _round(s.p90_minutes),
                "within_share": _round(s.within_share, 3),
            }
            for s in report.steps
        ],
        "resync_rate": _round(resyncs / sent, 3) if sent else None,
        "unconfirmed_batches": len(unconfirmed_ages),
        "oldest_unconfirmed_workdays": _round(max(unconfirmed_ages, default=0.0)),
        "channels": dict(report.channels),
    }


def _round(value: float | None, places: int = 1) -> float | None:
    return None if value is None else round(value, places)


REQUIRED = ("format", "office", "kode_wilayah", "month", "opened", "closed", "steps")


def check_summaries(found: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
    """Why summaries (with their file names) cannot be merged, in one line; None when they
    can."""
    months: set[str] = set()
    offices: dict[str, str] = {}
    for name, data in found:
        if data.get("format") != FORMAT or any(k not in data for k in REQUIRED):
            return f"{name} is not a ticketbot monthly summary ({FORMAT})"
        months.add(str(data["month"]))
        kode = str(data["kode_wilayah"])
        if kode in offices:
            return f"{name} and {offices[kode]} are both from {kode}: give each office once"
        offices[kode] = name
    if len(months) > 1:
        return f"the files are of different months ({', '.join(sorted(months))}): give one month"
    return None


def ranking(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The offices, best first: by the share of steps done within the standard (every
    step's passages together), then by tickets closed."""
    rows = []
    for data in summaries:
        handled = sum(int(s["handled"]) for s in data["steps"])
        within = sum(
            round(float(s["within_share"]) * int(s["handled"]))
            for s in data["steps"] if s["within_share"] is not None
        )  # fmt: skip
        rows.append({
            "kode_wilayah": data["kode_wilayah"],
            "region": region_name(str(data["kode_wilayah"])),
            "office": data["office"],
            "opened": data["opened"],
            "closed": data["closed"],
            "within_share": within / handled if handled else None,
            "steps": {int(s["sop_step"]): s["within_share"] for s in data["steps"]},
        })  # fmt: skip
    return sorted(rows, key=lambda r: (-(r["within_share"] or 0), -r["closed"], r["kode_wilayah"]))
