"""Server-side pagination: which page links a list shows."""

from __future__ import annotations

from dataclasses import dataclass

LINK_RADIUS = 2  # page numbers shown either side of the current one


@dataclass(frozen=True)
class Pager:
    """Page ``number`` (1-based) of ``total`` rows, ``size`` per page."""

    number: int
    size: int
    total: int

    @staticmethod
    def offset_of(number: int, size: int) -> int:
        """The first row (0-based) of page ``number``: what to query before the total is known."""
        return (number - 1) * size

    @property
    def offset(self) -> int:
        return self.offset_of(self.number, self.size)

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_row(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_row(self) -> int:
        return min(self.total, self.offset + self.size)

    def links(self) -> list[tuple[str, int]]:
        """(label, page) for first, previous, the numbers around this page, next, last. Past
        the last page (rows removed since the link was made) "previous" goes to the last."""
        out: list[tuple[str, int]] = []
        if self.number > 1:
            out += [("« first", 1), ("‹ previous", min(self.number - 1, self.last))]
        low = max(1, self.number - LINK_RADIUS)
        high = min(self.last, self.number + LINK_RADIUS)
        out += [(str(n), n) for n in range(low, high + 1)]
        if self.number < self.last:
            out += [("next ›", self.number + 1), ("last »", self.last)]
        return out
