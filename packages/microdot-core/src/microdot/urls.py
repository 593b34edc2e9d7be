"""Percent-encoding helpers for query strings, forms and paths."""
from __future__ import annotations

from typing import Union
from urllib.parse import quote, unquote, unquote_to_bytes


#: Characters ``urlencode`` leaves as they are, as Microdot does: those a URI may hold
#: in a query value except the ones that end or split it (``& = # ? + %``).
_URLENCODE_SAFE = "/:@!$'()*,;[]"


def urlencode(s: str) -> str:
    """Encode a text for a query string or form value (space becomes ``+``).

    As Microdot, only the characters that would end or split the value are escaped
    (``% + & = # ?``); unlike Microdot, each is escaped once (``+`` is ``%2B``, not
    ``%252B``) and characters a URI cannot hold (non-ASCII as UTF-8, controls,
    ``"<>\\^`{|}``) are percent-encoded too.

    Args:
        s: The text to encode.

    Returns:
        The encoded text.
    """
    return quote(s, safe=_URLENCODE_SAFE).replace('%20', '+')


def urldecode_str(s: str) -> str:
    """Decode a form-encoded string (``+`` is a space, ``%XX`` as UTF-8).

    Args:
        s: The encoded text.

    Returns:
        The decoded text; invalid UTF-8 becomes U+FFFD.
    """
    if '+' in s:
        s = s.replace('+', ' ')
    return unquote(s, errors='replace') if '%' in s else s


def urldecode_bytes(s: bytes) -> str:
    """Decode form-encoded bytes into text.

    Args:
        s: The encoded bytes.

    Returns:
        The decoded text; invalid UTF-8 becomes U+FFFD.
    """
    s = s.replace(b'+', b' ')
    return unquote_to_bytes(s).decode('utf-8', 'replace')


def urldecode(s: Union[str, bytes]) -> str:
    """Decode a form-encoded ``str`` or ``bytes`` value into text.

    Args:
        s: The encoded value.

    Returns:
        The decoded text; invalid UTF-8 becomes U+FFFD.
    """
    if isinstance(s, (bytes, bytearray)):
        return urldecode_bytes(bytes(s))
    return urldecode_str(s)


def decode_path(path: str) -> str:
    """Percent-decode a URL path as UTF-8; ``+`` stays a plus sign.

    Args:
        path: The path as it came in the request line.

    Returns:
        The decoded path; invalid UTF-8 becomes U+FFFD.
    """
    return unquote(path, errors='replace') if '%' in path else path
