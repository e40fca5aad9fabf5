"""Account pickers: the Zipf sampler's shape and reproducibility, uniform and hot."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from bench.sampling import HotPicker, UniformPicker, ZipfPicker


def test_zipf_probabilities_sum_to_one_and_decrease_with_rank() -> None:
    z = ZipfPicker(1000, 1.1, seed=1)
    probs = [z.probability_of_rank(r) for r in range(1, 1001)]
    assert sum(probs) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(probs))
    assert probs[0] / probs[1] == pytest.approx(2**1.1)


def test_zipf_samples_follow_the_distribution() -> None:
    z = ZipfPicker(100, 1.2, seed=3)
    rng = random.Random(5)
    n = 50_000
    counts = Counter(z.pick(rng) for _ in range(n))
    for rank in (1, 2, 10):
        expected = z.probability_of_rank(rank) * n
        observed = counts[z.index_of_rank(rank)]
        # a binomial count stays within 5 standard deviations (deterministic here: the seeds are fixed)
        assert abs(observed - expected) < 5 * (expected**0.5)
    assert all(0 <= i < 100 for i in counts)


def test_zipf_is_reproducible_and_spreads_hot_ranks() -> None:
    a, b = ZipfPicker(10_000, 1.1, seed=7), ZipfPicker(10_000, 1.1, seed=7)
    ra, rb = random.Random(1), random.Random(1)
    assert [a.pick(ra) for _ in range(100)] == [b.pick(rb) for _ in range(100)]
    # the permutation puts the hottest accounts anywhere, not at indices 0, 1, 2
    assert [a.index_of_rank(r) for r in (1, 2, 3)] != [0, 1, 2]


def test_pickers_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one account"):
        ZipfPicker(0, 1.1)
    with pytest.raises(ValueError, match="exponent"):
        ZipfPicker(10, 0)
    with pytest.raises(ValueError, match="at least one account"):
        UniformPicker(0)


def test_uniform_and_hot() -> None:
    rng = random.Random(2)
    u = UniformPicker(10)
    assert {u.pick(rng) for _ in range(1000)} == set(range(10))
    assert {HotPicker().pick(rng) for _ in range(10)} == {0}
