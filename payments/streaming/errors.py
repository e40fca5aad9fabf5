"""Errors of the streaming runtime. ``retriable`` tells the caller whether restarting may help."""

from __future__ import annotations

from payments.schemas.errors import ErrorCode, PaymentsError


class StreamingError(PaymentsError):
    code = ErrorCode.INTERNAL_ERROR


class FatalStreamingError(StreamingError):
    """The producer was fenced or hit a fatal error: this process must stop; a restart re-fences cleanly."""

    retriable = False


class RestoreTimeout(StreamingError):
    """The changelog could not be read up to the high watermark in time (e.g. a zombie's open transaction
    kept the last stable offset behind it longer than ``transaction.timeout.ms``)."""

    retriable = True
