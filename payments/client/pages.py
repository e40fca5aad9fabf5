"""Walking a paged list: fetch a page, yield its items, follow ``next_cursor`` until it is null.

Each page is its own call with its own retries; a failure mid-walk raises from the iterator, after the
items already yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

ItemT = TypeVar("ItemT")
ItemT_co = TypeVar("ItemT_co", covariant=True)


class Page(Protocol[ItemT_co]):
    """What ``PaymentPage``, ``TopUpPage`` and ``LedgerPage`` have in common."""

    @property
    def items(self) -> Sequence[ItemT_co]: ...

    @property
    def next_cursor(self) -> str | None: ...


def walk(fetch: Callable[[str | None], Page[ItemT]]) -> Iterator[ItemT]:
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def awalk(fetch: Callable[[str | None], Awaitable[Page[ItemT]]]) -> AsyncIterator[ItemT]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
