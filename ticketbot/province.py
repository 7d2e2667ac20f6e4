"""`ticketbot province-report`: several offices' monthly summaries (JSON, no personal data)
merged into one ranking of the province's kab/kota, as an XLSX and a PNG chart."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ticketbot.domain.province import check_summaries, ranking
from ticketbot.xlsx import Column, add_table, new_workbook, workbook_bytes


def read_summaries(paths: Sequence[Path]) -> list[tuple[str, dict[str, Any]]] | str:
    """The files (name, content), or why not in one line."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"{path}: no such file"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return f"{path}: not a readable JSON summary ({error})"
        if not isinstance(data, dict):
            return f"{path}: not a ticketbot monthly summary"
        found.append((str(path), data))
    return check_summaries(found) or found


def _share(value: object) -> float | None:
    return round(100 * float(value), 1) if isinstance(value, int | float) else None


def steps_of(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The timed steps the summaries name (their procedure's table, not ours)."""
    return sorted({int(step) for r in rows for step in r["steps"]})


def workbook(rows: Sequence[Mapping[str, Any]], month: str) -> bytes:
    steps = steps_of(rows)
    wb = new_workbook()
    add_table(wb, "Peringkat", (
        Column("Peringkat", 10, "number"), Column("Kab/Kota", 28, wrap=True),
        Column("Kode wilayah", 12), Column("Tiket dibuka", 12, "number"),
        Column("Tiket ditutup", 12, "number"), Column("% tepat waktu (semua langkah)", 16,
                                                        "number"),
        *(Column(f"% tepat waktu langkah {n}", 14, "number") for n in steps),
    ), (
        (i, r["region"], r["kode_wilayah"], r["opened"], r["closed"], _share(r["within_share"]),
         *(_share(r["steps"].get(n)) for n in steps))
        for i, r in enumerate(rows, start=1)
    ), print_header=f"Sinkronisasi NIK pada DWH, {month}")  # fmt: skip
    return workbook_bytes(wb)


def chart(rows: Sequence[Mapping[str, Any]], month: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 2.0 + 0.5 * len(rows)), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = [str(r["region"]) for r in rows]
    steps = steps_of(rows)
    width = 0.8 / max(len(steps), 1)
    for n, step in enumerate(steps):
        ys = [i - 0.4 + width * (n + 0.5) for i in range(len(rows))]
        ax.barh(ys, [_share(r["steps"].get(step)) or 0 for r in rows], width,
                label=f"langkah {step}")  # fmt: skip
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% tepat waktu")
    ax.set_title(f"Tepat waktu per langkah SOP, per kab/kota — {month}", loc="left")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def province_files(found: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[str, bytes, bytes]:
    """(month, XLSX, PNG) of checked summaries."""
    rows = ranking([data for _, data in found])
    month = str(found[0][1]["month"])
    return month, workbook(rows, month), chart(rows, month)
