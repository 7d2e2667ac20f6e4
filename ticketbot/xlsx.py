"""The recap attachment: one row per ticket; NIK and KK are text cells of 16 digits."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font

HEADERS = (
    "No. Tiket", "NIK", "No. KK", "Nama", "Lembaga Pengguna", "Keterangan",
    "Dibuka", "Dibuka oleh", "Diverifikasi", "Diverifikasi oleh",
    "Sinkron di Konsolidasi", "Disinkronkan oleh",
)  # fmt: skip
TEXT_COLUMNS = (2, 3)  # NIK, KK: a number cell would round away the last digit in Excel


@dataclass(frozen=True)
class RecapRow:
    ticket_id: int
    nik: str
    kk: str
    nama: str
    lembaga: str
    keterangan: str
    opened_at: datetime | None
    opened_by: str
    verified_at: datetime | None
    verified_by: str
    synced_at: datetime | None
    synced_by: str


def recap_workbook(rows: Sequence[RecapRow], title: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Rekap"
    ws.append([title])
    ws["A1"].font = Font(bold=True)
    ws.append(list(HEADERS))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([
            r.ticket_id, r.nik, r.kk, r.nama, r.lembaga, r.keterangan,
            _naive(r.opened_at), r.opened_by, _naive(r.verified_at), r.verified_by,
            _naive(r.synced_at), r.synced_by,
        ])  # fmt: skip
        line = ws.max_row
        for column in TEXT_COLUMNS:
            # The value is a str, so the cell is a string cell; "@" keeps it text on edit.
            ws.cell(row=line, column=column).number_format = "@"
        for column in (7, 9, 11):
            ws.cell(row=line, column=column).number_format = "yyyy-mm-dd hh:mm"
    widths = (10, 20, 20, 24, 24, 40, 17, 20, 17, 20, 17, 20)
    for letter, width in zip("ABCDEFGHIJKL", widths, strict=True):
        ws.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _naive(moment: datetime | None) -> datetime | None:
    """Excel has no time zones: cells hold office-local time."""
    return moment.replace(tzinfo=None) if moment else None
