"""HTTP errors raised by handlers and by the framework."""
from __future__ import annotations

from typing import NoReturn, Optional


class HTTPException(Exception):
    """Raised to answer the request with an HTTP error status (see :func:`abort`).

    The application's error handler for ``status_code`` makes the answer if there is
    one; otherwise the client gets ``reason`` as a plain-text body.

    Args:
        status_code: The HTTP status of the answer, such as 404.
        reason: The text of the answer; ``'<status_code> error'`` by default.
    """

    def __init__(self, status_code: int, reason: Optional[str] = None) -> None:
        self.status_code = status_code
        self.reason = reason or str(status_code) + ' error'
        super().__init__(status_code, self.reason)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        """``HTTPException: <status_code>``."""
        return 'HTTPException: {}'.format(self.status_code)


def abort(status_code: int, reason: Optional[str] = None) -> NoReturn:
    """Stop handling the request and answer with an HTTP error status.

    Args:
        status_code: The HTTP status of the answer, such as 404.
        reason: The text of the answer; ``'<status_code> error'`` by default.

    Raises:
        HTTPException: Always: dispatch turns it into the answer.
    """
    raise HTTPException(status_code, reason)
