"""HTTP errors raised by handlers and by the framework."""
from __future__ import annotations

from typing import NoReturn, Optional


class HTTPException(Exception):
    """Raised to answer the request with ``status_code`` (see :func:`abort`)."""

    def __init__(self, status_code: int, reason: Optional[str] = None) -> None:
        self.status_code = status_code
        self.reason = reason or str(status_code) + ' error'
        super().__init__(status_code, self.reason)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return 'HTTPException: {}'.format(self.status_code)


def abort(status_code: int, reason: Optional[str] = None) -> NoReturn:
    """Stop handling the request and answer with ``status_code``."""
    raise HTTPException(status_code, reason)
