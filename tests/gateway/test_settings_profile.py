"""The deployment profile (``PAYMENTS_ENV``) and the rate-limit defaults it implies."""

from __future__ import annotations

import pytest

from payments.gateway.settings import GatewaySettings


def test_unset_profile_is_production_with_the_limiter_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_ENV", raising=False)
    settings = GatewaySettings()
    assert settings.env == "production"
    assert settings.rate_limit_per_s == 100.0
    assert settings.rate_limit_burst == 200


def test_development_profile_has_no_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_ENV", "development")
    settings = GatewaySettings()
    assert settings.rate_limit_per_s is None
    assert settings.rate_limit_burst == 50


def test_explicit_values_win_over_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_ENV", "production")
    monkeypatch.setenv("PAYMENTS_RATE_LIMIT_PER_S", "5")
    monkeypatch.setenv("PAYMENTS_RATE_LIMIT_BURST", "7")
    settings = GatewaySettings()
    assert (settings.rate_limit_per_s, settings.rate_limit_burst) == (5.0, 7)
    monkeypatch.setenv("PAYMENTS_ENV", "development")
    assert GatewaySettings().rate_limit_per_s == 5.0  # a development stack may limit too


def test_zero_turns_the_limiter_off_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_ENV", raising=False)
    monkeypatch.setenv("PAYMENTS_RATE_LIMIT_PER_S", "0")
    assert GatewaySettings().rate_limit_per_s is None
    assert GatewaySettings(rate_limit_per_s=0).rate_limit_per_s is None


def test_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_ENV", "staging")
    with pytest.raises(ValueError, match="env"):
        GatewaySettings()
