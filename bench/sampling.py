"""Which account each payment goes to: one hot account, uniform, or Zipf-skewed. Pure and seeded."""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Protocol


class AccountPicker(Protocol):
    """Index in ``[0, n)`` of the account the next payment pays from."""

    @property
    def n(self) -> int: ...

    def pick(self, rng: random.Random) -> int: ...


class HotPicker:
    """Every payment on account 0: one balance shared by all users."""

    n = 1

    def pick(self, rng: random.Random) -> int:
        return 0


class UniformPicker:
    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("need at least one account")
        self.n = n

    def pick(self, rng: random.Random) -> int:
        return rng.randrange(self.n)


class ZipfPicker:
    """Rank r (1-based) has probability proportional to ``1 / r**s`` over ``n`` accounts.

    Ranks are mapped to account indices through a seeded permutation, so that the hottest accounts are
    spread over partitions (and database pages) instead of being accounts 0, 1, 2... Sampling is inverse
    CDF with a binary search: O(log n) per draw after an O(n) table.
    """

    def __init__(self, n: int, s: float, *, seed: int = 0) -> None:
        if n < 1:
            raise ValueError("need at least one account")
        if s <= 0:
            raise ValueError("the Zipf exponent must be positive")
        self.n = n
        self.s = s
        # float ** float is typed Any (a negative base would give a complex); these are all positive.
        weights: list[float] = [1.0 / float(r) ** s for r in range(1, n + 1)]
        self._cdf: list[float] = list(itertools.accumulate(weights))
        self._total: float = self._cdf[-1]
        self._rank_to_index = list(range(n))
        random.Random(seed).shuffle(self._rank_to_index)

    def probability_of_rank(self, rank: int) -> float:
        """Probability of the ``rank``-th most popular account (1-based)."""
        weight: float = 1.0 / float(rank) ** self.s
        return weight / self._total

    def index_of_rank(self, rank: int) -> int:
        return self._rank_to_index[rank - 1]

    def pick(self, rng: random.Random) -> int:
        u = rng.random() * self._total
        rank0 = min(bisect.bisect_right(self._cdf, u), self.n - 1)
        return self._rank_to_index[rank0]
