"""Jinja rendering of every text the bot sends (templates/telegram) and the email.

Telegram texts use parse_mode HTML; `.html` templates are autoescaped, so whatever the
staff typed (`<`, `&`, `*`, `_`) arrives literally. Short callback answers (plain text,
no parse mode) are macros in `answers.txt`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from ticketbot.domain.privacy import mask_number, mask_phone
from ticketbot.paths import TEMPLATES_DIR

DAYS = ("Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min")
MESSAGE_BUDGET = 3900  # under Telegram's 4096 characters, with room to spare
MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


def minutes_text(minutes: float) -> str:
    """'8 menit', '2 jam 5 menit', '1 hari 3 jam' (work days of 24 h are not used here)."""
    total = max(round(minutes), 0)
    hours, mins = divmod(total, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days} hari {hours} jam" if hours else f"{days} hari"
    if hours:
        return f"{hours} jam {mins} menit" if mins else f"{hours} jam"
    return f"{mins} menit"


def decimal(value: float, places: int = 1) -> str:
    """A number as Indonesians write it: 2,5 (a comma before the decimals)."""
    return f"{value:.{places}f}".replace(".", ",")


class Texts:
    def __init__(self, tz: ZoneInfo, words: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.tz = tz
        # A procedure's own words for its steps and actions, before labels.txt's.
        self.words = words or {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            # The templates do not change while the bot runs: no stat of the file per render.
            auto_reload=False,
        )
        self.env.filters.update(
            mask=mask_number, mask_phone=mask_phone, when=self.when, day=self.day,
            stamp=self.stamp,
            minutes=minutes_text, role=lambda r: self.label("roles", r), decimal=decimal,
        )  # fmt: skip
        self.env.globals["label"] = self.label
        self._answers: Any = None
        self._labels: Any = None

    def label(self, kind: str, key: str) -> str:
        """A word from labels.txt: kind is states, actions, steps, queue or roles."""
        if self._labels is None:
            self._labels = self.env.get_template("telegram/labels.txt").module
        own = self.words.get(kind, {}).get(str(key))  # the procedure's own words first
        table: dict[str, str] = getattr(self._labels, kind)
        return own if own is not None else table.get(str(key), str(key))

    def when(self, moment: datetime) -> str:
        local = moment.astimezone(self.tz)
        return f"{DAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local:%H:%M}"

    def stamp(self, moment: datetime) -> str:
        """'24 Nov 2026 09:03': a moment with its year (emails and files outlive the week)."""
        local = moment.astimezone(self.tz)
        return f"{self.day(local)} {local:%H:%M}"

    def day(self, moment: datetime | date) -> str:
        local = moment.astimezone(self.tz) if isinstance(moment, datetime) else moment
        return f"{local.day} {MONTHS[local.month - 1]} {local.year}"

    def render(self, name: str, **context: Any) -> str:
        """A whole message; surrounding blank lines trimmed, inner blank runs kept to one."""
        text = self.env.get_template(name).render(**context).strip()
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text

    def render_fitting(self, name: str, items: list[Any], **context: Any) -> str:
        """Render with as many of the newest `items` as fit in one Telegram message;
        the template says how many were left out (`hidden`)."""

        def render(shown: int) -> str:
            return self.render(
                name, items=items[len(items) - shown :], hidden=len(items) - shown, **context
            )

        return fit_message(render, len(items))

    def has_answer(self, name: str) -> bool:
        if self._answers is None:
            self._answers = self.env.get_template("telegram/answers.txt").module
        return hasattr(self._answers, name)

    def answer(self, name: str, **context: Any) -> str:
        """A short plain text (callback answers, button labels): a macro of answers.txt."""
        if self._answers is None:
            self._answers = self.env.get_template("telegram/answers.txt").module
        text = str(getattr(self._answers, name)(**context))
        return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


PLAIN_WIDTH = 78  # RFC 5322's recommended line length; a phone shows it without scrolling


def wrap_plain(text: str, width: int = PLAIN_WIDTH) -> str:
    """Wrap each long line of a plain-text email, continuing under its value
    ('   Keterangan: …' continues under the text after the colon)."""
    out = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        lead = re.match(r"^(\s*(?:[^:\s][^:]{0,12}:\s)?)", line)
        indent = " " * len(lead.group(1) if lead and line.startswith(" ") else "")
        out.extend(
            textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=True,
                          break_on_hyphens=False)
        )  # fmt: skip
    return "\n".join(out)


def fit_message(render: Callable[[int], str], total: int) -> str:
    """Render with fewer items each try until the text fits. Never cut the text itself:
    a cut could split an HTML tag. Every single item is bounded by the field limits."""
    shown = total
    while True:
        text = render(shown)
        if len(text) <= MESSAGE_BUDGET or shown <= 1:
            return text
        shown = max(1, shown * 3 // 4)
