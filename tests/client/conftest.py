"""The client's integration tests run against the e2e suite's stack: every service as a real process on
the session's broker and redis-server (tests/e2e/conftest.py)."""

from tests.e2e.conftest import stack, stack_env

__all__ = ["stack", "stack_env"]
