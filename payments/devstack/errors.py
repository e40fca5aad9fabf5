"""Errors raised by the local development stack (broker, Redis, topic set-up)."""

from __future__ import annotations


class DevstackError(Exception):
    """A local component could not be fetched, started or configured.

    Never retriable by the caller as is: the message says what to install or what went wrong, and for a
    process that died it includes the tail of that process's log.
    """
