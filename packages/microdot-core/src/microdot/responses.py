"""The ``Response`` object, and the file and redirect responses."""
from __future__ import annotations

import email.utils
import hashlib
import inspect
import json as _json
import json.encoder as _json_encoder
from json.encoder import encode_basestring_ascii as _encode_basestring_ascii
import os
from datetime import datetime, timezone
from typing import (Any, AsyncGenerator, Callable, Dict, Iterable, List, Optional, Tuple,
                    Union)

from .http11 import check_fields, is_field_name, reason_phrase
from .structures import NoCaseDict

# The standard module's C encoder, built once: ``json.dumps(obj)``'s output (its default
# separators, as Microdot sends JSON without orjson) without building an encoder per call.
# No circular-reference bookkeeping here: a structure that recurses too deeply is encoded
# again by ``json.dumps``, which raises what it always raises.
_c_make_encoder: Optional[Callable[..., Any]] = getattr(_json_encoder, 'c_make_encoder', None)
_c_encoder: Optional[Callable[[Any, int], Any]] = _c_make_encoder(None, _json.JSONEncoder().default, _encode_basestring_ascii,
                             None, ': ', ', ', False, False, True) \
    if _c_make_encoder is not None else None


def _dumps_json(obj: Any) -> bytes:
    """Encode ``obj`` as ``json.dumps(obj).encode()`` does, with the encoder built once.

    Args:
        obj: The value to encode.

    Returns:
        The JSON text, UTF-8 encoded.
    """
    if _c_encoder is not None:
        try:
            return ''.join(_c_encoder(obj, 0)).encode()
        except RecursionError:
            pass
    return _json.dumps(obj).encode()


try:  # pragma: no cover - optional speed-up
    import orjson as _orjson

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as JSON, as Microdot sends ``dict`` and ``list`` bodies.

        With orjson installed its compact output, else ``json.dumps(obj)``'s.

        Args:
            obj: The value to encode.

        Returns:
            The JSON text, UTF-8 encoded.
        """
        try:
            return _orjson.dumps(obj)
        except TypeError:
            return _dumps_json(obj)
except ImportError:  # pragma: no cover
    dumps = _dumps_json


_reason = reason_phrase

#: ``dict``'s own ``items``, past ``NoCaseDict`` (typed for checkers).
_dict_items: Callable[[Dict[str, Any]], Iterable[Tuple[str, Any]]]
_dict_items = dict.items  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]

#: The ``Content-Type`` of ``dict``/``list`` bodies, as Microdot sends it.
JSON_CONTENT_TYPE = 'application/json; charset=UTF-8'


def _check_header_text(text: str, what: str) -> None:
    if '\r' in text or '\n' in text or '\0' in text:
        raise ValueError('%s may not contain CR, LF or NUL characters: %r' % (what, text))


_JSON_FIELD = ('Content-Type', JSON_CONTENT_TYPE)

#: Lower-case names of the fields that servers frame or add themselves, and of
#: ``Set-Cookie`` (a list): given to ``Response``, they go into its ``NoCaseDict``.
_FRAMING_NAMES = frozenset((
    'content-type', 'content-length', 'set-cookie', 'date', 'connection', 'keep-alive',
    'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers',
    'transfer-encoding', 'upgrade'))
#: Field names known to be tokens and none of the above, one spelling per lower-case
#: name (so that a ``dict`` of them never holds one field twice), for
#: :func:`_checked_fields`; and that spelling per lower-case name.
_PLAIN_NAMES: set[str] = set()
_PLAIN_SPELLING: Dict[str, str] = {}
_PLAIN_NAMES_MAX = 1024


#: ``(name, value)`` fields that passed :func:`_checked_fields` (most responses give
#: the same few again): a dict of them passes without checking them again.
_CHECKED_ITEMS: set[Tuple[Any, Any]] = set()
_CHECKED_ITEMS_MAX = 1024


def _checked_fields(headers: Dict[Any, Any]) -> Optional[Dict[str, str]]:
    """A copy of the ``headers`` given to ``Response``, checked now, if they can be sent
    as they are: token names, none of them framing fields nor twice in another case,
    and ``str`` values without CR, LF or NUL. ``None`` otherwise (they then go into a
    ``NoCaseDict``, and a bad field is refused when the response is sent)."""
    try:
        if _CHECKED_ITEMS.issuperset(headers.items()):
            return headers.copy()
    except TypeError:  # an unhashable value (a list ...)
        return None
    if not _PLAIN_NAMES.issuperset(headers) and not _learn_names(headers):
        return None
    try:
        text = ''.join(headers.values())
    except TypeError:  # a value that is not a str (a number ...)
        return None
    if not text.isprintable() and ('\r' in text or '\n' in text or '\0' in text):
        return None
    if len(_CHECKED_ITEMS) >= _CHECKED_ITEMS_MAX:  # (values that vary: start again)
        _CHECKED_ITEMS.clear()
    _CHECKED_ITEMS.update(headers.items())
    return headers.copy()


def _learn_names(headers: Dict[Any, Any]) -> bool:
    """Add the names of ``headers`` that qualify to ``_PLAIN_NAMES``; whether all do."""
    for name in headers:
        if name in _PLAIN_NAMES:
            continue
        if not is_field_name(name):
            return False
        lower = name.lower()
        if lower in _FRAMING_NAMES or _PLAIN_SPELLING.get(lower, name) != name or \
                len(_PLAIN_NAMES) >= _PLAIN_NAMES_MAX:
            return False
        _PLAIN_SPELLING[lower] = name
        _PLAIN_NAMES.add(name)
    return True


def _cookie_text(cookie: str, value: str, path: Optional[str], domain: Optional[str],
                 expires: Union[str, datetime, None], max_age: Optional[int],
                 secure: bool, http_only: bool, partitioned: bool,
                 samesite: Optional[str]) -> str:
    """The ``Set-Cookie`` value for :meth:`Response.set_cookie`'s arguments, checked."""
    for what, text in (('cookie name', cookie), ('cookie value', value),
                       ('cookie path', path or ''), ('cookie domain', domain or '')):
        _check_header_text(str(text), what)
        if ';' in str(text) and what != 'cookie value':
            raise ValueError('%s may not contain ";": %r' % (what, text))
    if ';' in value:
        raise ValueError('cookie value may not contain ";" (encode it first): %r'
                         % value)
    parts = [cookie + '=' + value]
    if path:
        parts.append('Path=' + path)
    if domain:
        parts.append('Domain=' + domain)
    if expires:
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            expires = email.utils.format_datetime(
                expires.astimezone(timezone.utc), usegmt=True)
        _check_header_text(expires, 'cookie expiry')
        parts.append('Expires=' + expires)
    if max_age is not None:
        parts.append('Max-Age=' + str(int(max_age)))
    if secure:
        parts.append('Secure')
    if http_only:
        parts.append('HttpOnly')
    if samesite:
        if samesite.capitalize() not in ('Strict', 'Lax', 'None'):
            raise ValueError("samesite must be 'Strict', 'Lax' or 'None'")
        parts.append('SameSite=' + samesite.capitalize())
    if partitioned:
        parts.append('Partitioned')
    return '; '.join(parts)


class Response:
    """An HTTP response: status, headers and a body.

    The body may be ``str``, ``bytes``, a ``dict``/``list`` (sent as JSON), a sync or
    async generator, or an object with a ``read(n)`` method (sync or async); the last
    three are streamed.

    Args:
        body: The body. ``None`` with status 200 gives an empty 204 answer.
        status_code: The status code.
        headers: The headers (copied); a list value gives repeated fields.
        reason: The reason phrase (default: the standard one for the status).
    """

    types_map: Dict[str, str] = {
        'css': 'text/css',
        'gif': 'image/gif',
        'html': 'text/html',
        'htm': 'text/html',
        'jpg': 'image/jpeg',
        'jpeg': 'image/jpeg',
        'js': 'application/javascript',
        'mjs': 'application/javascript',
        'json': 'application/json',
        'png': 'image/png',
        'svg': 'image/svg+xml',
        'ico': 'image/x-icon',
        'txt': 'text/plain',
        'xml': 'application/xml',
        'pdf': 'application/pdf',
        'webp': 'image/webp',
        'wasm': 'application/wasm',
        'woff': 'font/woff',
        'woff2': 'font/woff2',
        'mp4': 'video/mp4',
        'webm': 'video/webm',
        'csv': 'text/csv',
    }
    #: Content type for ``str`` bodies and responses that do not set one.
    default_content_type = 'text/plain'
    #: Cache-Control max-age for :meth:`send_file` when not given (``None``: no header).
    default_send_file_max_age: Optional[int] = None
    #: Read size when streaming files and readers.
    send_file_buffer_size = 16 * 1024
    #: Returned by a handler that has written its answer itself (e.g. a WebSocket).
    #: (Set below the class.)
    already_handled: 'Response'

    def __init__(self, body: Any = b'', status_code: int = 200,
                 headers: Optional[Dict[str, Any]] = None,
                 reason: Optional[str] = None) -> None:
        if body is None and status_code == 200:
            body = b''
            status_code = 204
        self.status_code = status_code
        self.reason = reason
        # (set here, not left at the class defaults: servers read them per response)
        self.file_info = self._headers = self._fields = self._type_field = \
            self._cookies = None
        if headers is not None:  # else created on first access (see ``headers``)
            # always a copy, as in Microdot: complete() and set_cookie() add to it, so
            # a dict shared between responses must not collect their fields
            fields = _checked_fields(headers) if type(headers) is dict else None
            if fields is not None:  # checked now: sent as they are (see _fields)
                self._fields = fields
            else:
                self._headers = headers.copy() if isinstance(headers, NoCaseDict) \
                    else NoCaseDict(headers)
        if type(body) is str:
            self.body = body.encode()
        elif isinstance(body, (dict, list)):
            self.body = dumps(body)
            given = self._headers
            if given is None:  # (a Content-Type given is never in _fields)
                self._type_field = _JSON_FIELD
            elif 'content-type' not in given.keymap:  # a type the caller gave is kept
                given['Content-Type'] = JSON_CONTENT_TYPE
        elif isinstance(body, str):
            self.body = body.encode()
        else:
            self.body = body if body is not None else b''

    #: The body: bytes, or a file, reader, iterator or generator to stream.
    body: Any

    # usually left at these class-level defaults
    #: The header dict, ``None`` until headers are set or read: adapters test it to
    #: send a response that has no headers of its own in one step.
    _headers: Optional[NoCaseDict[Any]] = None
    # Until ``headers`` is first read, what it will hold, kept apart so that servers
    # and adapters send it without building a NoCaseDict (see one_step_type_field):
    #: the fields given to the constructor, checked there (see _checked_fields);
    _fields: Optional[Dict[str, str]] = None
    #: the ``Content-Type`` field set by the constructor for a ``dict``/``list`` body;
    _type_field: Optional[Tuple[str, str]] = None
    #: the ``Set-Cookie`` values added by :meth:`set_cookie`, checked there.
    _cookies: Optional[List[str]] = None
    reason: Optional[str] = None
    is_head = False
    file_info: Optional[Tuple[str, int, float]] = None

    @property
    def headers(self) -> NoCaseDict[Any]:
        """Response headers (case-insensitive names; a list value gives repeated fields)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = NoCaseDict(self._fields)
            if self._fields is not None or self._type_field is not None or \
                    self._cookies is not None:
                # in the order they were set: constructor, then set_cookie()
                if self._type_field is not None:
                    headers['Content-Type'] = self._type_field[1]
                if self._cookies is not None:
                    headers['Set-Cookie'] = self._cookies
                self._fields = self._type_field = self._cookies = None
        return headers

    @headers.setter
    def headers(self, value: Any) -> None:
        self._headers = value if isinstance(value, NoCaseDict) else NoCaseDict(value)
        if self._fields is not None or self._type_field is not None or \
                self._cookies is not None:
            self._fields = self._type_field = self._cookies = None

    # -- cookies --------------------------------------------------------------------

    def set_cookie(self, cookie: str, value: str, path: Optional[str] = None,
                   domain: Optional[str] = None,
                   expires: Union[str, datetime, None] = None,
                   max_age: Optional[int] = None, secure: bool = False,
                   http_only: bool = False, partitioned: bool = False,
                   samesite: Optional[str] = None) -> None:
        """Add a ``Set-Cookie`` header (several cookies give several headers).

        Args:
            cookie: The cookie's name.
            value: Its value, sent as given (encode it first if needed).
            path: The ``Path`` attribute.
            domain: The ``Domain`` attribute.
            expires: The ``Expires`` attribute: a ``datetime`` (naive means UTC) or
                the text to send.
            max_age: The ``Max-Age`` attribute, in seconds.
            secure: Add the ``Secure`` attribute.
            http_only: Add the ``HttpOnly`` attribute.
            partitioned: Add the ``Partitioned`` attribute.
            samesite: The ``SameSite`` attribute: ``'Strict'``, ``'Lax'`` or ``'None'``.

        Raises:
            ValueError: A name, value, path, domain or expiry contains CR, LF or NUL,
                one of them but the value contains ``;``, the value contains ``;``, or
                ``samesite`` is none of the three.
        """
        cookie_text = None
        if max_age is None and not (path or domain or expires or secure or http_only
                                    or partitioned or samesite):
            try:
                text = cookie + '=' + value
            except TypeError:  # (refused below)
                text = ';'
            if text.isprintable() and ';' not in text:  # nothing to refuse
                cookie_text = text
        if cookie_text is None:
            cookie_text = _cookie_text(cookie, value, path, domain, expires, max_age,
                                       secure, http_only, partitioned, samesite)
        if self._headers is None:  # kept apart until headers is read
            cookies = self._cookies
            if cookies is None:
                self._cookies = [cookie_text]
            else:
                cookies.append(cookie_text)  # (this response's own list)
            return
        existing = self.headers.get('Set-Cookie')
        if existing is None:
            self.headers['Set-Cookie'] = [cookie_text]
        elif isinstance(existing, list):  # a new list: the old one may be shared
            self.headers['Set-Cookie'] = existing + [cookie_text]
        else:
            self.headers['Set-Cookie'] = [existing, cookie_text]

    def delete_cookie(self, cookie: str, **kwargs: Any) -> None:
        """Ask the client to drop ``cookie`` (same ``path``/``domain`` as when set).

        Args:
            cookie: The cookie's name.
            **kwargs: The other :meth:`set_cookie` arguments (``path``, ``domain``
                ...); ``max_age`` and ``expires`` are ignored.
        """
        kwargs.pop('max_age', None)
        kwargs.pop('expires', None)
        self.set_cookie(cookie, '', expires='Thu, 01 Jan 1970 00:00:01 GMT',
                        max_age=0, **kwargs)

    # -- finishing and writing ------------------------------------------------------

    def complete(self) -> None:
        """Fill in ``Content-Length`` (for byte bodies) and ``Content-Type``."""
        headers = self.headers
        keymap = headers.keymap
        if 'content-length' not in keymap and isinstance(self.body, bytes):
            keymap['content-length'] = 'Content-Length'
            dict.__setitem__(headers, 'Content-Length', str(len(self.body)))  # pyright: ignore[reportUnknownMemberType]
        if 'content-type' not in keymap:
            keymap['content-type'] = 'Content-Type'
            dict.__setitem__(headers, 'Content-Type', self.default_type())  # pyright: ignore[reportUnknownMemberType]

    def default_type(self) -> str:
        """The ``Content-Type`` sent when none is set.

        Returns:
            :attr:`default_content_type`, with ``; charset=UTF-8`` unless it names a
            charset.
        """
        ctype = self.default_content_type
        return ctype if 'charset=' in ctype else ctype + '; charset=UTF-8'

    def reason_phrase(self) -> str:
        """The reason phrase to send.

        Returns:
            The given reason, or the standard one for the status code.
        """
        return self.reason or _reason(self.status_code)

    def header_items(self) -> List[Tuple[str, str]]:
        """Headers as ``(name, value)`` pairs, list values expanded.

        Returns:
            The header fields, in order; a list or tuple value gives one field per item.
        """
        items: List[Tuple[str, str]] = []
        append = items.append
        for name, value in _dict_items(self.headers):
            if type(value) is str:
                append((name, value))
            elif isinstance(value, (list, tuple)):
                for v in value:  # pyright: ignore[reportUnknownVariableType]
                    append((name, str(v)))  # pyright: ignore[reportUnknownArgumentType]
            else:
                append((name, str(value)))
        return items

    async def write(self, stream: Any) -> None:
        """Write the whole response, HTTP/1.0 style, to a writer with ``awrite``.

        A writer that fails with ``OSError`` (the client went away) ends the write
        silently.

        Args:
            stream: The writer: an object with an async ``awrite(data)`` method.
        """
        from .http11 import serialize_response_head
        try:
            self.complete()
            head = serialize_response_head(self.status_code, self.reason_phrase(),
                                           self.header_items(), version='1.0')
            await stream.awrite(head)
            if self.is_head:
                close_body(self.body)
            else:
                async for chunk in self.body_iter():
                    await stream.awrite(chunk)
        except OSError:  # the client went away
            pass

    def body_iter(self) -> AsyncGenerator[bytes, None]:
        """The body as an async iterator of byte chunks.

        Returns:
            An iterator over the body's bytes; it closes generators and files however
            the iteration ends.
        """
        return _iterate_body(self.body, self.send_file_buffer_size)

    # -- factories ------------------------------------------------------------------

    @classmethod
    def redirect(cls, location: str, status_code: int = 302) -> 'Response':
        """A redirect to ``location``.

        Args:
            location: The URL to send the client to (the ``Location`` header).
            status_code: The redirect status.

        Returns:
            The response, with no body.

        Raises:
            ValueError: ``location`` contains CR, LF or NUL.
        """
        _check_header_text(location, 'redirect location')
        return cls(status_code=status_code, headers={'Location': location})

    @classmethod
    def send_file(cls, filename: str, status_code: int = 200,
                  content_type: Optional[str] = None, stream: Any = None,
                  max_age: Optional[int] = None, compressed: Union[bool, str] = False,
                  file_extension: str = '') -> 'Response':
        """A response streaming a file, typed by its extension.

        Files opened here answer conditional (ETag / Last-Modified) and ``Range``
        requests.

        Args:
            filename: The file's path; its extension gives the ``Content-Type``.
            status_code: The status code.
            content_type: The ``Content-Type`` (default: from the extension, else
                ``application/octet-stream``).
            stream: An open file (or reader) to send instead of opening ``filename``.
            max_age: The ``Cache-Control`` max-age, in seconds (default:
                :attr:`default_send_file_max_age`).
            compressed: Marks a pre-compressed file: ``True`` for
                ``Content-Encoding: gzip``, or the encoding's name.
            file_extension: Appended to ``filename`` to open the file (its type still
                comes from ``filename``).

        Returns:
            The response streaming the file.
        """
        if content_type is None:
            name = filename
            if compressed and name.endswith('.gz'):
                name = name[:-3]
            ext = name.rsplit('.', 1)[-1].lower() if '.' in os.path.basename(name) else ''
            # the bare type, as Microdot sends it: a file's encoding is not known here
            content_type = cls.types_map.get(ext, 'application/octet-stream')
        headers: Dict[str, Any] = {'Content-Type': content_type}
        if max_age is None:
            max_age = cls.default_send_file_max_age
        if max_age is not None:
            headers['Cache-Control'] = 'max-age={}'.format(max_age)
        if compressed:
            headers['Content-Encoding'] = compressed if isinstance(compressed, str) else 'gzip'
        info = None
        if stream is None:
            path = filename + file_extension
            f = open(path, 'rb')
            st = os.fstat(f.fileno())
            info = (path, st.st_size, st.st_mtime)
            headers['Content-Length'] = str(st.st_size)
            headers['Last-Modified'] = email.utils.formatdate(st.st_mtime, usegmt=True)
            headers['ETag'] = '"%s"' % hashlib.sha1(
                ('%s-%d-%d' % (path, st.st_size, st.st_mtime_ns)).encode()).hexdigest()[:20]
            headers['Accept-Ranges'] = 'bytes'
            stream = f
        res = cls(body=stream, status_code=status_code, headers=headers)
        res.file_info = info
        return res

    # -- conditional and range requests for files -------------------------------------

    def _apply_conditional(self, request: Any) -> 'Response':
        """Turn a file response into 304, 206 or 416 as the request's headers ask."""
        if self.file_info is None or self.status_code != 200 or \
                request.method not in ('GET', 'HEAD'):
            return self
        headers = request.headers
        etag = self.headers.get('ETag')
        inm = headers.get('If-None-Match')
        not_modified = False
        if inm is not None:
            tags = [t.strip().removeprefix('W/') for t in inm.split(',')]
            not_modified = '*' in tags or etag in tags
        else:
            ims = headers.get('If-Modified-Since')
            if ims:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError, IndexError, OverflowError):
                    since = None
                if since is not None and int(self.file_info[2]) <= since:
                    not_modified = True
        if not_modified:
            self._close_body()
            res = Response(b'', 304)
            for name in ('ETag', 'Last-Modified', 'Cache-Control', 'Content-Location',
                         'Vary', 'Expires'):
                if name in self.headers:
                    res.headers[name] = self.headers[name]
            return res
        rng = headers.get('Range')
        if rng and request.method == 'GET':
            if_range = headers.get('If-Range')
            if if_range and if_range != etag and if_range != self.headers.get('Last-Modified'):
                return self
            size = self.file_info[1]
            span = _parse_range(rng, size)
            if span is None:
                return self
            if not isinstance(span, tuple):  # 'unsatisfiable'
                self._close_body()
                res = Response(b'', 416, headers={'Content-Range': 'bytes */%d' % size})
                return res
            start, end = span
            self.status_code = 206
            self.headers['Content-Range'] = 'bytes %d-%d/%d' % (start, end, size)
            self.headers['Content-Length'] = str(end - start + 1)
            self.body.seek(start)
            self.body = _LimitedReader(self.body, end - start + 1)
        return self

    def _close_body(self) -> None:
        close = getattr(self.body, 'close', None)
        if close is not None and not inspect.iscoroutinefunction(close):
            close()

    def __repr__(self) -> str:
        return '<Response %d>' % self.status_code


def _parse_range(header: str, size: int) -> Union[None, str, Tuple[int, int]]:
    """One ``bytes=`` range resolved against ``size``; ``None`` to ignore the header."""
    unit, _, spec = header.partition('=')
    if unit.strip().lower() != 'bytes' or ',' in spec:
        return None  # other units and multiple ranges: send the whole file
    first, sep, last = spec.strip().partition('-')
    if not sep or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None  # syntactically invalid: ignored, as RFC 9110 allows
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return 'unsatisfiable'
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size:
        return 'unsatisfiable'
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


class _LimitedReader:
    """A file wrapper that stops after ``remaining`` bytes (for 206 answers)."""

    def __init__(self, f: Any, remaining: int) -> None:
        self.f = f
        self.remaining = remaining

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.remaining:
            n = self.remaining
        data = self.f.read(n) if n else b''
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


async def _iterate_body(body: Any, buffer_size: int) -> AsyncGenerator[bytes, None]:
    """Yield a body's bytes, closing generators and files however iteration ends."""
    if isinstance(body, bytes):
        if body:
            yield body
        return
    if isinstance(body, (bytearray, memoryview)):
        if body:
            yield bytes(body)  # pyright: ignore[reportUnknownArgumentType]
        return
    try:
        if hasattr(body, '__anext__'):
            async for chunk in body:
                if chunk:
                    yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        elif hasattr(body, 'read'):
            is_async = inspect.iscoroutinefunction(body.read)
            while True:
                chunk = await body.read(buffer_size) if is_async else body.read(buffer_size)
                if not chunk:
                    break
                yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        elif hasattr(body, '__next__') or hasattr(body, '__iter__'):
            for chunk in body:
                if chunk:
                    yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        else:
            data = str(body).encode()
            if data:
                yield data
    finally:
        aclose = getattr(body, 'aclose', None)
        if aclose is not None:
            await aclose()
        else:
            close = getattr(body, 'close', None)
            if close is not None:
                result = close()
                if inspect.isawaitable(result):
                    await result


def close_body(body: Any) -> None:
    """Release a body that will not be sent (generators, files), without reading it.

    Args:
        body: The body: bytes need nothing; generators and files are closed.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        return
    aclose = getattr(body, 'aclose', None)
    if aclose is not None:
        try:
            aclose().close()  # an unstarted async generator has nothing to run
        except Exception:  # pragma: no cover
            pass
        return
    close = getattr(body, 'close', None)
    if close is not None and not inspect.iscoroutinefunction(close):
        close()


Response.already_handled = Response()


_TYPE_FIELDS: Dict[str, Tuple[str, str]] = {}
#: The statuses whose responses have a body (200-999 but 204 and 304).
_BODY_STATUSES = frozenset(range(200, 1000)) - {204, 304}


def plain_type_field(res: Response) -> Optional[Tuple[str, str]]:
    """The ``Content-Type`` field of a *plain* response, which can be sent in one step.

    A plain response has a byte body that is sent, a status that has a body, and no
    headers of its own but the ``Content-Type`` of a ``dict``/``list`` body: servers
    and adapters send it with a ``Content-Length`` in one step.

    Args:
        res: The response.

    Returns:
        Its ``('Content-Type', value)`` field; ``None`` for any other response, or if
        the default type cannot be sent (CR, LF, NUL or not latin-1): the caller's
        full path then handles it (and answers 500 for a bad type).
    """
    if res._fields is not None or res._cookies is not None:  # pyright: ignore[reportPrivateUsage]
        return None
    return one_step_type_field(res)


def one_step_type_field(res: Response) -> Optional[Tuple[str, str]]:
    """The ``Content-Type`` field of a response that can be sent in one step.

    That is a plain response (see :func:`plain_type_field`), or one whose only other
    fields were checked when they were set and kept apart from a ``NoCaseDict``
    because its ``headers`` were never read: ``res._fields`` (the ``str`` fields
    given to the constructor) and ``res._cookies`` (the ``Set-Cookie`` values of
    ``set_cookie()``), each ``None`` when there are none. Servers and adapters send
    those, then this field and a ``Content-Length``, without checking them again.

    Args:
        res: The response.

    Returns:
        Its ``('Content-Type', value)`` field; ``None`` for any other response, or if
        the default type cannot be sent (CR, LF, NUL or not latin-1): the caller's
        full path then handles it (and answers 500 for a bad type).
    """
    status = res.status_code
    if type(res.body) is not bytes or res.is_head or type(status) is not int or \
            status not in _BODY_STATUSES:
        return None
    headers = res._headers  # pyright: ignore[reportPrivateUsage]
    if headers:  # only the JSON type that __init__ set (checked by identity: cheap)
        if len(headers) == 1 and dict.get(headers, 'Content-Type') is JSON_CONTENT_TYPE:  # pyright: ignore[reportUnknownMemberType]
            return _JSON_FIELD
        return None
    field = res._type_field  # pyright: ignore[reportPrivateUsage]
    if field is not None:
        return field
    field = _TYPE_FIELDS.get(res.default_content_type)
    if field is None:
        field = _default_type_field(res)
    return field


def _default_type_field(res: Response) -> Optional[Tuple[str, str]]:
    """The checked ``Content-Type`` field for ``default_content_type`` (then cached)."""
    field = ('Content-Type', res.default_type())
    try:
        check_fields([field])
        field[1].encode('latin-1')
    except (ValueError, UnicodeEncodeError):
        return None
    if len(_TYPE_FIELDS) < 64:
        _TYPE_FIELDS[res.default_content_type] = field
    return field


def internal_error() -> Response:
    """A complete 500 answer for servers and adapters whose response could not be sent.

    Its headers are fixed, so a broken ``default_content_type`` cannot break it too.

    Returns:
        A new ``500 Internal server error`` response.
    """
    return Response(b'Internal server error', 500,
                    {'Content-Type': 'text/plain; charset=UTF-8', 'Content-Length': '21'})


def redirect(location: str, status_code: int = 302) -> Response:
    """A redirect response to ``location`` (see :meth:`Response.redirect`).

    Args:
        location: The URL to send the client to.
        status_code: The redirect status.

    Returns:
        The response.
    """
    return Response.redirect(location, status_code=status_code)


def send_file(filename: str, status_code: int = 200, content_type: Optional[str] = None,
              stream: Any = None, max_age: Optional[int] = None,
              compressed: Union[bool, str] = False, file_extension: str = '') -> Response:
    """A response streaming ``filename`` (see :meth:`Response.send_file`).

    Args:
        filename: The file's path.
        status_code: The status code.
        content_type: The ``Content-Type`` (default: from the extension).
        stream: An open file to send instead of opening ``filename``.
        max_age: The ``Cache-Control`` max-age, in seconds.
        compressed: Marks a pre-compressed file (``True``: gzip, or the encoding).
        file_extension: Appended to ``filename`` to open the file.

    Returns:
        The response.
    """
    return Response.send_file(filename, status_code=status_code, content_type=content_type,
                              stream=stream, max_age=max_age, compressed=compressed,
                              file_extension=file_extension)
