"""``Prefer: wait=N`` (RFC 7240 §4.3). Pure.

Preferences the server does not understand, or malformed ones, are ignored as RFC 7240 asks; a wait above
the server's maximum is clamped to it, and the value actually applied is echoed in ``Preference-Applied``.
"""

from __future__ import annotations


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_prefer_wait(headers: list[str], max_wait_s: int) -> int | None:
    """Seconds to wait from all ``Prefer`` header values, clamped to ``max_wait_s``; None if not asked.

    The first ``wait`` preference wins (RFC 7240 §2: later duplicates are ignored).
    """
    for header in headers:
        for pref in _split_outside_quotes(header, ","):
            token, _, value = _split_outside_quotes(pref, ";")[0].partition("=")
            if token.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            if not value.isascii() or not value.isdigit():
                return None
            return min(int(value), max_wait_s)
    return None


def preference_applied(wait_s: int) -> str:
    return f"wait={wait_s}"
