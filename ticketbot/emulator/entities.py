"""Telegram's text formatting rules, as strictly as Telegram applies them.

parse_html / parse_markdown_v2 return the plain text after entity parsing, or raise
EntityError with Telegram's wording ("can't parse entities: ...").
"""

from __future__ import annotations

import re

HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
ENTITY = re.compile(r"&(#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);")
ATTR_TEXT = r"""(?:\s+[\w-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*"""
TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)(" + ATTR_TEXT + r")\s*>")
ATTR = re.compile(r"([\w-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")
MD_RESERVED = set("_*[]()~`>#+-=|{}.!")


class EntityError(ValueError):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _unescape_entity(match: re.Match[str], source: str) -> str:
    body = match[1]
    if body.startswith("#x"):
        return chr(int(body[2:], 16))
    if body.startswith("#"):
        return chr(int(body[1:]))
    if body.lower() in NAMED_ENTITIES:
        return NAMED_ENTITIES[body.lower()]
    raise EntityError(
        f"can't parse entities: Unsupported HTML entity at byte offset "
        f"{_offset(source, match.start())}"
    )


def parse_html(text: str) -> str:
    plain: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            match = TAG.match(text, i)
            if not match:
                raise EntityError(
                    f"can't parse entities: Unsupported start tag at byte offset "
                    f"{_offset(text, i)}"
                )
            closing, name, attrs = match[1], match[2].lower(), match[3]
            if name not in HTML_TAGS:
                raise EntityError(
                    f'can\'t parse entities: Unsupported start tag "{name}" at byte offset '
                    f"{_offset(text, i)}"
                )
            if closing:
                if not stack or stack[-1] != name:
                    raise EntityError(
                        f"can't parse entities: Unmatched end tag at byte offset "
                        f'{_offset(text, i)}, expected "</{stack[-1] if stack else ""}>", '
                        f'found "</{name}>"'
                    )
                stack.pop()
            else:
                _check_attributes(name, attrs, text, i)
                stack.append(name)
            i = match.end()
        elif ch == "&":
            match = ENTITY.match(text, i)
            if not match:
                raise EntityError(
                    "can't parse entities: Character '&' must be escaped at byte offset "
                    f"{_offset(text, i)}"
                )
            plain.append(_unescape_entity(match, text))
            i = match.end()
        elif ch == ">":
            raise EntityError(
                f"can't parse entities: Character '>' must be escaped at byte offset "
                f"{_offset(text, i)}"
            )
        else:
            plain.append(ch)
            i += 1
    if stack:
        raise EntityError(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return "".join(plain)


def _check_attributes(name: str, attrs: str, text: str, index: int) -> None:
    found = {m[1].lower(): (m[2] or m[3] or m[4] or "") for m in ATTR.finditer(attrs)}
    if name == "a":
        href = found.get("href", "")
        if not re.match(r"^(https?://|tg://user\?id=\d+$|tg://)", href):
            raise EntityError(
                f"can't parse entities: Invalid URL in a tag at byte offset {_offset(text, index)}"
            )
    elif name == "span" and found.get("class") != "tg-spoiler":
        raise EntityError(
            f'can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset '
            f"{_offset(text, index)}"
        )


MD_MARKERS = ("```", "__", "||", "*", "_", "~", "`")


def parse_markdown_v2(text: str) -> str:
    """MarkdownV2: every reserved character outside an entity must be escaped with '\\'."""
    plain: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        in_code = bool(stack) and stack[-1] in ("`", "```")
        if ch == "\\":
            if i + 1 >= len(text) or (ord(text[i + 1]) > 126 and not in_code):
                raise EntityError(
                    f"can't parse entities: Can't escape character at byte offset "
                    f"{_offset(text, i)}"
                )
            plain.append(text[i + 1])
            i += 2
            continue
        marker = next((m for m in MD_MARKERS if text.startswith(m, i)), None)
        if in_code:
            if marker is not None and marker == stack[-1]:
                stack.pop()
                i += len(marker)
                continue
            plain.append(ch)
            i += 1
            continue
        if marker is not None:
            if stack and stack[-1] == marker:
                stack.pop()
            else:
                stack.append(marker)
            i += len(marker)
            continue
        if ch == "[":
            stack.append("[")
            i += 1
            continue
        if ch == "]" and stack and stack[-1] == "[":
            stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityError(
                    f"can't parse entities: Can't find end of a URL at byte offset "
                    f"{_offset(text, i)}"
                )
            end = text.find(")", i + 2)
            if end == -1:
                raise EntityError(
                    f"can't parse entities: Can't find end of a URL at byte offset "
                    f"{_offset(text, i)}"
                )
            i = end + 1
            continue
        if ch in MD_RESERVED:
            raise EntityError(
                f"can't parse entities: Character '{ch}' is reserved and must be escaped with "
                f"the preceding '\\'"
            )
        plain.append(ch)
        i += 1
    if stack:
        raise EntityError(
            f"can't parse entities: Can't find end of {stack[-1]!r} entity at byte offset "
            f"{_offset(text, len(text))}"
        )
    return "".join(plain)


def plain_text(text: str, parse_mode: str | None) -> str:
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode in ("", "none"):
        return text
    if mode == "markdown":
        return text  # legacy Markdown: the bot never uses it
    raise EntityError(f"unsupported parse_mode {parse_mode!r}")
