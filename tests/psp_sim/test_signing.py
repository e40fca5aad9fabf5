"""The simulator's adapter over the shared ``payments.standard_webhooks`` (tested in
``tests/test_standard_webhooks.py``): same signatures, the simulator's own configuration error."""

from __future__ import annotations

import pytest

from payments import standard_webhooks
from payments.psp_sim.errors import InvalidSecret
from payments.psp_sim.signing import decode_secret, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signs_exactly_like_the_shared_module() -> None:
    body = b'{"test": 2432232314}'
    assert sign(SECRET, "msg_1", 1614265330, body) == standard_webhooks.sign(
        SECRET, "msg_1", 1614265330, body
    )
    headers = standard_webhooks.signed_headers([SECRET], "msg_1", 1614265330, body)
    assert verify([SECRET], headers, body, now=1614265330) == "msg_1"


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", ""])
def test_malformed_secret_is_the_simulators_invalid_secret(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        decode_secret(secret)
    with pytest.raises(InvalidSecret):
        sign(secret, "msg_1", 1, b"{}")
