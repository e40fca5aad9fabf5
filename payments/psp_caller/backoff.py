"""Exponential backoff with full jitter, pure: the caller owns the ``random.Random``.

Full jitter (sleep uniformly in ``[0, min(cap, base * 2**n)]``) spreads thousands of callers that failed at
the same moment (a PSP blip) over the whole window instead of letting them retry in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2**40 * any sane base is far above any cap; bounding the exponent keeps the float finite for huge n.
_MAX_EXPONENT = 40


@dataclass(frozen=True)
class Backoff:
    base_s: float
    cap_s: float

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("base_s and cap_s must be >= 0")

    def ceiling(self, retry: int) -> float:
        """The upper bound of the delay before retry number ``retry`` (0 = the first retry), seconds."""
        if retry < 0:
            raise ValueError(f"retry must be >= 0, got {retry}")
        return min(self.cap_s, self.base_s * float(2 ** min(retry, _MAX_EXPONENT)))

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to sleep before retry number ``retry``: uniform in ``[0, ceiling(retry)]``."""
        return rng.uniform(0.0, self.ceiling(retry))
