"""Async byte readers for request bodies.

``AsyncBytesIO`` reads from memory; ``BodyStream`` reads a body that is still arriving,
from any async chunk source (the built-in server's connection, ASGI ``receive``, a
WSGI input), never past the end of the body.
"""
from __future__ import annotations

import io
from typing import AsyncIterator, Awaitable, Callable, Optional, Union


class AsyncBytesIO:
    """An in-memory async reader with the ``asyncio.StreamReader`` reading methods.

    As in Microdot, the bytes live in ``stream`` (an ``io.BytesIO``) and
    :meth:`awrite` writes there, so it can also capture what a response writes
    (``await response.write(out)``, then ``out.stream.getvalue()``).

    Args:
        data: The bytes to read.
    """

    def __init__(self, data: Union[bytes, bytearray, memoryview] = b'') -> None:
        self.stream = io.BytesIO(data)

    async def read(self, n: Optional[int] = -1) -> bytes:
        """Read up to ``n`` bytes.

        Args:
            n: How many bytes at most; ``-1`` or ``None`` for all that is left.

        Returns:
            The bytes read; ``b''`` at the end.
        """
        return self.stream.read(-1 if n is None else n)

    async def readline(self) -> bytes:
        """Read one line.

        Returns:
            The line, with its ``\\n`` unless it is the last one; ``b''`` at the end.
        """
        return self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Args:
            n: How many bytes.

        Returns:
            The ``n`` bytes.

        Raises:
            EOFError: If fewer than ``n`` bytes are left.
        """
        chunk = self.stream.read(n)
        if len(chunk) < n:
            raise EOFError('expected %d bytes, got %d' % (n, len(chunk)))
        return chunk

    async def readuntil(self, separator: bytes = b'\n', _partial_ok: bool = False) -> bytes:
        """Read up to and including ``separator``.

        Args:
            separator: What ends the data to read.
            _partial_ok: Internal: at the end, return what is left instead of raising.

        Returns:
            The bytes read, ending with ``separator``.

        Raises:
            EOFError: If the data left has no ``separator``.
        """
        stream = self.stream
        pos = stream.tell()
        with stream.getbuffer() as view:
            i = view[pos:].tobytes().find(separator)
        if i == -1:
            if not _partial_ok:
                raise EOFError('separator not found')
            return stream.read()
        return stream.read(i + len(separator))

    async def awrite(self, data: bytes) -> None:
        """Write into :attr:`stream` at the current position (as Microdot does).

        Args:
            data: The bytes to write.
        """
        self.stream.write(data)

    async def aclose(self) -> None:
        """Do nothing: the stream stays readable (the writer API of asyncio)."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.readline()
            if not line:
                return
            yield line


ChunkSource = Callable[[], Awaitable[bytes]]


class BodyTooLarge(Exception):
    """The body grew past the limit set for it while being read."""


class BodyStream(AsyncBytesIO):
    """Reads a request body on demand from ``receive()``, which returns b'' at the end.

    ``limit`` bounds how much may be read in total; going past it raises
    :class:`BodyTooLarge` (answered 413) so an undeclared body cannot escape the limit.

    Args:
        receive: Returns the next chunk of the body; ``b''`` at its end.
        limit: The most bytes the body may have (``None``: no limit).
    """

    def __init__(self, receive: ChunkSource, limit: Optional[int] = None) -> None:
        super().__init__(b'')
        self._receive = receive
        self._buffer = bytearray()
        self._eof = False
        self._limit = limit
        self._total = 0

    async def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = await self._receive()
        if not chunk:
            self._eof = True
            return False
        self._total += len(chunk)
        if self._limit is not None and self._total > self._limit:
            self._eof = True
            raise BodyTooLarge('request body larger than %d bytes' % self._limit)
        self._buffer += chunk
        return True

    async def read(self, n: Optional[int] = -1) -> bytes:
        """Read up to ``n`` bytes, waiting for the body to arrive if needed.

        Args:
            n: How many bytes at most; ``-1`` or ``None`` for the rest of the body.

        Returns:
            The bytes read; ``b''`` at the end of the body.

        Raises:
            BodyTooLarge: If the body grows past the limit.
        """
        if n is None or n < 0:
            while await self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        if n == 0:
            return b''
        if not self._buffer:
            await self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes, waiting for the body to arrive if needed.

        Args:
            n: How many bytes.

        Returns:
            The ``n`` bytes.

        Raises:
            EOFError: If the body ends first.
            BodyTooLarge: If the body grows past the limit.
        """
        while len(self._buffer) < n:
            if not await self._fill():
                raise EOFError('expected %d bytes, got %d' % (n, len(self._buffer)))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readline(self) -> bytes:
        """Read one line, waiting for the body to arrive if needed.

        Returns:
            The line, with its ``\\n`` unless it ends the body; ``b''`` at the end.

        Raises:
            BodyTooLarge: If the body grows past the limit.
        """
        return await self.readuntil(b'\n', _partial_ok=True)

    async def readuntil(self, separator: bytes = b'\n', _partial_ok: bool = False) -> bytes:
        """Read up to and including ``separator``, waiting for the body if needed.

        Args:
            separator: What ends the data to read.
            _partial_ok: Internal: at the end, return what is left instead of raising.

        Returns:
            The bytes read, ending with ``separator``.

        Raises:
            EOFError: If the body ends without ``separator``.
            BodyTooLarge: If the body grows past the limit.
        """
        start = 0
        while True:
            i = self._buffer.find(separator, start)
            if i != -1:
                return await self.readexactly(i + len(separator))
            start = max(0, len(self._buffer) - len(separator) + 1)
            if not await self._fill():
                if _partial_ok:
                    return await self.read()
                raise EOFError('separator not found')

    @property
    def at_eof(self) -> bool:
        """Whether the whole body has been received and read."""
        return self._eof and not self._buffer
