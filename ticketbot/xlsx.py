"""Spreadsheets the office opens: plain tables, safe to open (SPEC §4).

- headers in row 1 (pandas' and calamine's default), frozen, with a filter; long text
  wrapped; landscape, one page wide;
- no cell is ever a formula: every text cell is a string cell, whatever it starts with
  (`=`, `+`, `-`, `@`), with Excel's quote prefix so an edit keeps it text;
- NIK and KK are text of 16 digits (a number cell would round away the last digit);
- nothing in a value can make the writer raise: characters XML cannot carry are dropped.

Written in openpyxl's write-only mode: linear time and flat memory for large batches.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ticketbot.domain.mail import SheetRow

if TYPE_CHECKING:  # openpyxl is imported when a sheet is written (30 MiB the bot need not hold)
    from openpyxl import Workbook
    from openpyxl.styles.cell_style import StyleArray
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

# XML 1.0 cannot carry these (tab, new line and carriage return it can).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FORMULA_LEAD = ("=", "+", "-", "@")
DATE_FORMAT = "yyyy-mm-dd hh:mm"
CELL_LIMIT = 32767  # characters a cell holds (Excel)


@dataclass(frozen=True)
class Column:
    header: str
    width: float
    kind: str = "text"  # text | number | date | digits (NIK/KK: text that looks numeric)
    wrap: bool = False


def sheet_text(value: str) -> str:
    """What a text cell holds for `value`: the same text, less what XML cannot carry
    (XML also reads a carriage return as a new line)."""
    return XML_ILLEGAL.sub("", value).replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class _ColumnStyles:
    """A column's cell styles, registered once: every cell of the column shares them (a
    style set on each cell costs more than writing the cell)."""

    text: StyleArray
    quoted: StyleArray  # text that starts like a formula, and NIK/KK: Excel's quote prefix
    date: StyleArray

    @classmethod
    def of(cls, ws: WriteOnlyWorksheet, column: Column) -> _ColumnStyles:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment

        def style(*, quoted: bool = False, date: bool = False) -> StyleArray:
            cell = WriteOnlyCell(ws, value=None)
            if column.wrap:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            if column.kind == "digits":
                cell.number_format = "@"
            if date:
                cell.number_format = DATE_FORMAT
            cell.quotePrefix = quoted
            return cell._style

        return cls(style(), style(quoted=True), style(date=True))


def _cell(
    new_cell: Callable[[WriteOnlyWorksheet], Any],
    ws: WriteOnlyWorksheet,
    column: Column,
    styles: _ColumnStyles,
    value: Any,
) -> Any:
    if value is None or value == "":
        return None
    if column.kind == "date" and isinstance(value, datetime):
        cell = new_cell(ws)
        # Excel has no zones; a datetime is what a date cell holds (set as is, like text).
        cell._value, cell.data_type = value.replace(tzinfo=None), "d"
        cell._style = styles.date
        return cell
    if column.kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = sheet_text(str(value))[:CELL_LIMIT]
    cell = new_cell(ws)
    # A literal string, never a formula, whatever it starts with. Set as is: sheet_text()
    # already made it what a cell can hold (openpyxl's own check would run again per cell).
    cell._value, cell.data_type = text, "s"
    quoted = column.kind == "digits" or text.startswith(FORMULA_LEAD)
    cell._style = styles.quoted if quoted else styles.text
    return cell


def add_table(
    wb: Workbook,
    title: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    print_header: str = "",
) -> None:
    """One sheet: a header row and one row per item, in a single pass over `rows`."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    ws = wb.create_sheet(title)
    ws._values_to_row = _rows_of_cells(ws)
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.freeze_panes = "A2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    if print_header:
        ws.oddHeader.center.text = sheet_text(print_header).replace("&", "&&")
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=column.header)
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)
    styles = [_ColumnStyles.of(ws, c) for c in columns]
    count = 0
    for row in rows:
        lines = max((_lines(str(v), c.width) for c, v in zip(columns, row, strict=True)
                     if c.wrap and v), default=1)  # fmt: skip
        if lines > 1:
            # A wrapped cell needs its row tall enough: LibreOffice and printers do not grow
            # a row written without a height, and the text runs over the next one.
            ws.row_dimensions[count + 2].height = LINE_POINTS * lines
        ws.append([_cell(WriteOnlyCell, ws, c, st, v)
                   for c, st, v in zip(columns, styles, row, strict=True)])  # fmt: skip
        count += 1
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A1:{last}{count + 1}"


def _rows_of_cells(ws: WriteOnlyWorksheet) -> Callable[[Sequence[Any], int], Iterator[Any]]:
    """openpyxl's write-only sheet turns each appended value into a cell by trying it as a
    value first: a cell made here (styled, typed) fails that try with a ValueError whose
    message formats the cell's repr, ~40 % of a 10k-row recap's writing. Our rows are cells
    already (or plain numbers): placed as they are. (openpyxl 3.1's `_values_to_row`.)"""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import Cell

    def values_to_row(values: Sequence[Any], row_idx: int) -> Iterator[Any]:
        for col_idx, value in enumerate(values, 1):
            if value is None:
                continue
            cell = value if isinstance(value, Cell) else WriteOnlyCell(ws, value)
            cell.column, cell.row = col_idx, row_idx
            yield cell

    return values_to_row


LINE_POINTS = 15  # one line of the default 11-point font


def _lines(text: str, width: float) -> int:
    """How many lines `text` takes wrapped in a column `width` characters wide."""
    per_line = max(int(width) - 1, 1)
    return sum(max(math.ceil(len(part) / per_line), 1) for part in text.split("\n"))


def workbook_bytes(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def new_workbook() -> Workbook:
    from openpyxl import Workbook

    return Workbook(write_only=True)


# -- the recap attachment --------------------------------------------------------------

RECAP_COLUMNS = (
    Column("No. Tiket", 10, "number"),
    Column("NIK", 19, "digits"),
    Column("No. KK", 19, "digits"),
    Column("Nama", 22, wrap=True),
    Column("Lembaga Pengguna", 22, wrap=True),
    Column("Keterangan", 40, wrap=True),
    Column("Dibuka", 17, "date"),
    Column("Dibuka oleh", 18, wrap=True),
    Column("Diverifikasi", 17, "date"),
    Column("Diverifikasi oleh", 18, wrap=True),
    Column("Sinkron di Konsolidasi", 22, "date"),
    Column("Disinkronkan oleh", 18, wrap=True),
    Column("Kirim ulang", 12),  # "Ya": the DWH could not read it after an earlier recap
    Column("Alasan kirim ulang", 30, wrap=True),  # what the ADB recorded with "Ulang"
    # Left empty for the central DWH admin to answer per row and send back (SPEC §4c).
    Column("Status DWH", 14),
    Column("Catatan DWH", 30, wrap=True),
)
HEADERS = tuple(c.header for c in RECAP_COLUMNS)


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
    repeat: bool = False  # sent before; the DWH still could not read it ("Ulang")
    repeat_reason: str = ""  # the reason recorded with the "Ulang"

    def cells(self) -> tuple[Any, ...]:
        return (
            self.ticket_id, self.nik, self.kk, self.nama, self.lembaga, self.keterangan,
            self.opened_at, self.opened_by, self.verified_at, self.verified_by,
            self.synced_at, self.synced_by, "Ya" if self.repeat else "", self.repeat_reason,
            "", "",
        )  # fmt: skip


def recap_workbook(rows: Sequence[RecapRow], title: str) -> bytes:
    wb = new_workbook()
    add_table(wb, "Rekap", RECAP_COLUMNS, (r.cells() for r in rows), print_header=title)
    return workbook_bytes(wb)


def read_dwh_answers(data: bytes, limit: int = 20000) -> list[SheetRow]:
    """The rows of a recap workbook sent back with "Status DWH"/"Catatan DWH" filled in.
    Anything that is not such a workbook reads as no rows (never raises)."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a broken or foreign file: zip, XML, openpyxl's own errors
        return []
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True) if wb.worksheets else iter(())
        header = [str(c or "").strip().lower() for c in next(rows, ())]
        names = ("no. tiket", "status dwh", "catatan dwh")
        if not all(n in header for n in names):
            return []
        ticket, status, note = (header.index(n) for n in names)
        found = []
        for n, row in enumerate(rows):
            if n >= limit:
                break
            cells = [*row, *[None] * max(0, len(header) - len(row))]
            number = str(cells[ticket] or "").strip().lstrip("#").removesuffix(".0")
            if number.isdigit():
                found.append(
                    SheetRow(int(number), str(cells[status] or ""), str(cells[note] or ""))
                )
        return found
    except Exception:  # a malformed sheet inside a well-formed zip
        return []
    finally:
        wb.close()
