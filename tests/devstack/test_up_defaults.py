"""The dev stack's partition count fits the machine it runs on."""

from __future__ import annotations

import pytest

from payments.devstack.up import dev_partitions
from payments.settings import KafkaSettings


@pytest.mark.parametrize(("cores", "partitions"), [(1, 4), (2, 4), (3, 6), (8, 16)])
def test_two_partitions_per_core_and_never_fewer_than_four(cores: int, partitions: int) -> None:
    assert dev_partitions(cores) == partitions


def test_the_production_default_stays_independent_of_the_dev_machine() -> None:
    assert KafkaSettings().partitions == 64
