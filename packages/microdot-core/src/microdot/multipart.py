"""``multipart/form-data`` forms and file uploads (Microdot 2.x compatible).

The body is read from ``request.stream`` in chunks and parsed as it arrives, so
memory stays bounded whatever the upload size: file parts are streamed to the
handler (:class:`FormDataIter`) or spilled to temporary files in the system temp
directory (:func:`with_form_data`), which are always removed afterwards.

Request size limits still apply: the default ``Request.max_content_length`` is
16 KiB, so an application that accepts uploads must raise it, e.g.
``app.max_content_length = 100 * 1024 * 1024``. Bodies above ``max_body_length``
are not read into memory by the server; they are left in ``request.stream``.

Beyond Microdot: quoted boundaries, repeated fields and files (``getlist``),
limits on part headers, part count and field sizes, and a
400 answer (413 for a limit) for malformed bodies instead of a crash.
"""
from __future__ import annotations

import logging
import os
import tempfile
import weakref
from typing import (TYPE_CHECKING, Any, Awaitable, BinaryIO, Callable, Concatenate, Coroutine,
                    Dict, Iterator, List, Optional, ParamSpec, Tuple, TypeVar, Union, overload)

from .app import invoke_handler
from .exceptions import HTTPException
from .helpers import wraps
from .multipart_parser import FINISHED, NEED_DATA, PART_END, MultipartError, \
    MultipartParser, PartData, PartHeaders, parse_options_header, valid_boundary
from .requests import Request
from .streams import AsyncBytesIO
from .structures import MultiDict, NoCaseDict

if TYPE_CHECKING:
    # the value type defaults to Any, as MultiDict's
    from typing_extensions import TypeVar as TypeVarWithDefault
    _V = TypeVarWithDefault('_V', default=Any)
else:
    _V = TypeVar('_V')

logger = logging.getLogger('microdot.multipart')

_P = ParamSpec('_P')
_R = TypeVar('_R')

#: Reads up to ``n`` bytes of an upload (``-1`` or ``None``: the rest); ``b''`` at its end.
Reader = Callable[[int], Awaitable[bytes]]
PathOrFile = Union[str, 'os.PathLike[str]', BinaryIO]


def _boundary_of(content_type: Optional[str]) -> Optional[str]:
    """The boundary of a ``multipart/form-data`` content type; ``''`` if the type is
    multipart without a usable boundary; ``None`` if the type is something else."""
    try:
        mimetype, params = parse_options_header(content_type)
    except MultipartError:
        return '' if (content_type or '').lower().startswith('multipart/form-data') \
            else None
    if mimetype != 'multipart/form-data':
        return None
    boundary = params.get('boundary', '')
    return boundary if valid_boundary(boundary) else ''


def _remove_file(f: Any, path: str) -> None:
    try:
        f.close()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:  # pragma: no cover
            logger.warning('Could not remove temporary upload file %s', path)


class FileUpload:
    """An uploaded file, to stream (:meth:`read`, :meth:`save`) or keep (:meth:`copy`).

    A copy stays in memory up to :attr:`max_memory_size` bytes, else goes to a
    temporary file.

    Args:
        filename: The file name the client gave.
        content_type: The part's ``Content-Type``.
        read: Reads the part's bytes.
        headers: The part's headers.
        name: The form field name.
    """

    #: Largest upload :meth:`copy` keeps in memory; larger ones go to a temporary file.
    max_memory_size = 1024

    def __init__(self, filename: str, content_type: Optional[str], read: Reader,
                 headers: Optional[NoCaseDict[str]] = None, name: Optional[str] = None
                 ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.headers: NoCaseDict[str] = headers if headers is not None else NoCaseDict()
        self.name = name
        #: Size in bytes, known once the file was copied.
        self.size: Optional[int] = None
        self._read = read
        self._copied = False
        self._file: Optional[BinaryIO] = None
        self._path: Optional[str] = None
        self._finalizer: Optional[weakref.finalize[[BinaryIO, str], FileUpload]] = None

    @property
    def temp_path(self) -> Optional[str]:
        """Path of the temporary file holding a copied upload (``None`` if in memory)."""
        return self._path

    async def read(self, n: Optional[int] = -1) -> bytes:
        """Read the next bytes of the file.

        Args:
            n: How many bytes at most; ``-1`` or ``None`` for all the rest.

        Returns:
            The bytes; ``b''`` at the end.

        Raises:
            RuntimeError: If the upload was skipped by moving on to the next part.
        """
        return await self._read(-1 if n is None else n)

    async def save(self, path_or_file: PathOrFile) -> None:
        """Write the (rest of the) file to a path or a binary file object, in chunks.

        Args:
            path_or_file: A path, or a file object open for binary writing.
        """
        if isinstance(path_or_file, (str, bytes, os.PathLike)):
            with open(path_or_file, 'wb') as f:
                await self._copy_to(f)
        else:
            await self._copy_to(path_or_file)

    async def _copy_to(self, f: Any) -> int:
        total = 0
        size = FormDataIter.buffer_size
        while True:
            data = await self.read(size)
            if not data:
                return total
            f.write(data)
            total += len(data)

    async def copy(self, max_memory_size: Optional[int] = None) -> 'FileUpload':
        """Read the whole upload now, so that parsing can go on to the next parts.

        Args:
            max_memory_size: The largest copy kept in memory (default:
                :attr:`max_memory_size`); a larger one goes to a temporary file.

        Returns:
            ``self``, now readable from the copy.
        """
        if self._copied:
            return self
        limit = max_memory_size or self.max_memory_size
        chunks: List[bytes] = []
        size = 0
        while size <= limit:
            data = await self.read(max(limit + 1 - size, 1))
            if not data:
                buffer = b''.join(chunks)
                self._set_reader(AsyncBytesIO(buffer).read, len(buffer))
                return self
            chunks.append(data)
            size += len(data)
        fd, path = tempfile.mkstemp(prefix='microdot-upload-')
        f = os.fdopen(fd, 'w+b')
        self._file, self._path = f, path
        self._finalizer = weakref.finalize(self, _remove_file, f, path)
        try:
            f.write(b''.join(chunks))
            chunks = []
            size += await self._copy_to(f)
            f.seek(0)
        except BaseException:
            await self.close()
            raise

        async def read_file(n: Optional[int] = -1) -> bytes:
            return f.read(n if n is not None and n >= 0 else -1)

        self._set_reader(read_file, size)
        return self

    def _set_reader(self, read: Reader, size: int) -> None:
        self._read = read
        self._copied = True
        self.size = size

    async def close(self) -> None:
        """Release the copy and remove its temporary file.

        :func:`with_form_data` calls it when the request ends.
        """
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
            self._file = None
            self._path = None

    def __repr__(self) -> str:
        return '<FileUpload %r (%s)>' % (self.filename, self.content_type)


class FormDataIter:
    """Async iterator of ``(name, value)`` for the parts of a ``multipart/form-data`` body.

    In order: ``str`` for fields, :class:`FileUpload` for files. A file must be read
    (or :meth:`FileUpload.copy`-ed) before the next iteration, which skips what is
    left of it. Nothing is produced for other content types. Malformed bodies raise
    ``HTTPException(400)``; broken limits ``HTTPException(413)``.

    Args:
        request: The request whose body is read, from ``request.stream``.
    """

    #: Bytes asked from the request stream per read.
    buffer_size = 64 * 1024
    #: Largest header block of one part.
    max_part_header_size = 8 * 1024
    #: Most header fields in one part.
    max_part_headers = 32
    #: Most parts (fields and files) in one body.
    max_parts = 1000
    #: Largest value of one (non-file) field, in bytes.
    max_field_size = 1024 * 1024
    #: Largest total of all (non-file) field values, in bytes.
    max_form_memory_size = 4 * 1024 * 1024

    def __init__(self, request: Request) -> None:
        self.request = request
        self._parser: Optional[MultipartParser] = None
        self._invalid = False
        self._total = 0
        self._form_bytes = 0
        self._current: Optional[FileUpload] = None
        self._part_done = True
        self._pending = b''
        self._pos = 0
        boundary = _boundary_of(request.content_type)
        if boundary is None:
            return
        if not boundary:
            self._invalid = True
            return
        self._parser = MultipartParser(boundary, max_header_size=self.max_part_header_size,
                                       max_headers=self.max_part_headers,
                                       max_parts=self.max_parts)
        self._limit = getattr(request, 'max_content_length', None)

    def __aiter__(self) -> 'FormDataIter':
        return self

    async def __anext__(self) -> Tuple[str, Union[str, FileUpload]]:
        if self._invalid:
            raise HTTPException(400, 'Invalid multipart/form-data content type')
        if self._parser is None:
            raise StopAsyncIteration
        if self._current is not None:
            current, self._current = self._current, None
            skipped = False
            while await self._read_part(self.buffer_size):
                skipped = True
            # (the iterator owns the uploads it makes)
            if not current._copied:  # pyright: ignore[reportPrivateUsage]
                current._read = _skipped if skipped else _at_end  # pyright: ignore[reportPrivateUsage]
        event = await self._next_event()
        if event is FINISHED:
            self._parser = None
            raise StopAsyncIteration
        if not isinstance(event, PartHeaders):  # pragma: no cover - parser guarantees it
            raise HTTPException(400, 'Malformed multipart body')
        headers = NoCaseDict(event.headers)
        try:
            # RFC 7578, 4.2: senders must not use filename*=; like Microdot, only
            # filename= names the file
            disposition, params = parse_options_header(
                headers.get('Content-Disposition'), extended=False)
        except MultipartError:
            raise HTTPException(400, 'Malformed multipart part header') from None
        name = params.get('name')
        if disposition != 'form-data' or name is None:
            raise HTTPException(400, 'Multipart part without a form-data name')
        self._part_done = False
        self._pending, self._pos = b'', 0
        filename = params.get('filename')
        content_type = headers.get('Content-Type')
        if filename is None:
            return name, await self._read_field(content_type)
        upload = FileUpload(filename, content_type, self._read_part, headers, name)
        self._current = upload
        return name, upload

    async def _read_field(self, content_type: Optional[str]) -> str:
        chunks: List[bytes] = []
        size = 0
        while True:
            data = await self._read_part(self.buffer_size)
            if not data:
                break
            size += len(data)
            self._form_bytes += len(data)
            if size > self.max_field_size or self._form_bytes > self.max_form_memory_size:
                raise HTTPException(413, 'Form field too large')
            chunks.append(data)
        charset = 'utf-8'
        if content_type:
            try:
                charset = parse_options_header(content_type)[1].get('charset') or charset
            except MultipartError:
                pass
        try:
            return b''.join(chunks).decode(charset, 'replace')
        except LookupError:
            return b''.join(chunks).decode('utf-8', 'replace')

    async def _next_event(self) -> Any:
        parser = self._parser
        assert parser is not None
        stream = self.request.stream
        while True:
            try:
                event = parser.next_event()
            except MultipartError as exc:
                raise HTTPException(400, 'Malformed multipart body: %s' % exc) from None
            if event is not NEED_DATA:
                return event
            try:
                chunk = await stream.read(self.buffer_size)
            except EOFError:  # pragma: no cover - a reader that raises at the end
                chunk = b''
            if chunk:
                self._total += len(chunk)
                if self._limit is not None and self._total > self._limit:
                    raise HTTPException(413, 'Payload too large')
            parser.feed(chunk)

    async def _read_part(self, n: Optional[int] = -1) -> bytes:
        """Up to ``n`` bytes of the current part (all of it for ``n < 0``)."""
        if n is None or n < 0:
            chunks: List[bytes] = []
            while True:
                data = await self._read_part(self.buffer_size)
                if not data:
                    return b''.join(chunks)
                chunks.append(data)
        while self._pos >= len(self._pending):
            if self._part_done:
                return b''
            event = await self._next_event()
            if isinstance(event, PartData):
                self._pending, self._pos = event.data, 0
            elif event is PART_END:
                self._part_done = True
                self._pending, self._pos = b'', 0
                return b''
            else:  # pragma: no cover - the parser ends parts before anything else
                raise HTTPException(400, 'Malformed multipart body')
        if n == 0:
            return b''
        if self._pos == 0 and n >= len(self._pending):
            data = self._pending
        else:
            data = self._pending[self._pos:self._pos + n]
        self._pos += len(data)
        return data


async def _at_end(n: int = -1) -> bytes:
    return b''


async def _skipped(n: int = -1) -> bytes:
    raise RuntimeError('this upload was skipped by moving on to the next form part; '
                       'read or copy() it before the next iteration')


class FormData(MultiDict[_V]):
    """The fields or files of a multipart body, as :func:`with_form_data` sets them.

    ``request.form`` and ``request.files``. Microdot gives plain dicts here, in which
    a repeated name keeps its last value; so do item access, ``get()``, ``items()``,
    ``values()``, iteration, ``dict()`` and JSON output (``for name, upload in
    request.files.items()`` works unchanged). Unlike Microdot, the earlier values are
    not lost: :meth:`getlist` has them all.

    Args:
        initial: Values to start with, as for :class:`~microdot.MultiDict`.
    """

    def __getitem__(self, key: str) -> _V:
        """The last value of ``key``; ``KeyError`` if it has none."""
        last: _V = super(MultiDict, self).__getitem__(key)[-1]
        return last

    def __iter__(self) -> Iterator[str]:
        """The names, in the order they first came."""
        # (overridden so that dict(form) goes through keys() and __getitem__)
        return super(MultiDict, self).__iter__()

    def items(self) -> List[Tuple[str, _V]]:  # type: ignore[override]  # pyright: ignore[reportIncompatibleMethodOverride]
        """Return each name with its last value.

        Returns:
            ``(name, value)`` pairs, in the order the names first came.
        """
        return [(key, values[-1]) for key, values in super(MultiDict, self).items()]

    def values(self) -> List[_V]:  # type: ignore[override]  # pyright: ignore[reportIncompatibleMethodOverride]
        """Return the last value of each name.

        Returns:
            The values, in the order the names first came.
        """
        return [values[-1] for values in super(MultiDict, self).values()]

    def to_dict(self, flat: bool = True) -> Dict[str, Any]:
        """Return a plain ``dict`` of the contents.

        Args:
            flat: ``True`` for the last value of each name, ``False`` for the list of all
                its values.

        Returns:
            A new ``dict``.
        """
        return dict(self.items()) if flat else dict(self.lists())

    def copy(self) -> FormData[_V]:
        """Return a copy with its own value lists.

        Returns:
            A new ``FormData`` with the same values.
        """
        new: FormData[_V] = FormData()
        for key, values in self.lists():
            super(MultiDict, new).__setitem__(key, values)
        return new


@overload
def with_form_data(f: Callable[Concatenate[Request, _P], Awaitable[_R]]
                   ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...


@overload
def with_form_data(f: Callable[Concatenate[Request, _P], _R]
                   ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...


def with_form_data(f: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """Parse a ``multipart/form-data`` body into ``request.form`` and ``request.files``.

    A decorator, placed below the route decorator: both become :class:`FormData`
    dicts before ``f`` is called. As in Microdot, a request that is not multipart, or
    has no parts, is left as it is: ``request.files`` stays ``None`` (and
    ``request.form`` is the urlencoded form, or ``None``). Files are copied
    (:meth:`FileUpload.copy`) and closed, temporary files removed, when ``f``
    returns or fails.

    Args:
        f: The route handler, ``def`` or ``async def``.

    Returns:
        An ``async`` handler with ``f``'s parameters and return value.

    Raises:
        HTTPException: When called: 400 for a malformed body, 413 for a limit.
    """
    @wraps(f)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        if _boundary_of(request.content_type) is None:
            return await invoke_handler(f, request, *args, **kwargs)
        form: FormData[str] = FormData()
        files: FormData[FileUpload] = FormData()
        uploads: List[FileUpload] = []
        try:
            async for name, value in FormDataIter(request):
                if isinstance(value, FileUpload):
                    uploads.append(value)
                    files[name] = await value.copy()
                else:
                    form[name] = value
            if form or files:
                request.form = form
                request.files = files
            return await invoke_handler(f, request, *args, **kwargs)
        finally:
            for upload in uploads:
                try:
                    await upload.close()
                except Exception:  # pragma: no cover
                    logger.exception('Could not close upload %r', upload.filename)
    return wrapper
