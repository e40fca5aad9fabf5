"""Response latency sampler, pure: the caller owns the ``random.Random``.

Real PSP latency is right-skewed: most calls near the median, a long tail. A lognormal with the configured
median, scaled so that ``max`` is its 99th percentile and clipped there, gives that shape with two knobs.
"""

from __future__ import annotations

import math
import random

_Z_P99 = 2.3263478740408408  # standard normal quantile at 0.99


def sample_latency_ms(rng: random.Random, median_ms: float, max_ms: float) -> float:
    """One latency in milliseconds, in ``[0, max_ms]``. A median of 0 means no delay at all."""
    if median_ms <= 0 or max_ms <= 0:
        return 0.0
    if max_ms <= median_ms:
        return median_ms
    sigma = math.log(max_ms / median_ms) / _Z_P99
    return min(rng.lognormvariate(math.log(median_ms), sigma), max_ms)
