"""MultiDict, NoCaseDict, URL encoding, HTTPException, AsyncBytesIO, helpers, imports."""
import asyncio
import functools
import importlib

import pytest

import microdot
from microdot import (AsyncBytesIO, HTTPException, MultiDict, NoCaseDict, abort,
                      iscoroutine, urldecode, urlencode)


def run(coro):
    return asyncio.run(coro)


# -- MultiDict ------------------------------------------------------------------------------

def test_multidict_keeps_every_value():
    d = MultiDict()
    d['a'] = '1'
    d['a'] = '2'
    d['b'] = '3'
    assert d['a'] == '1'
    assert d.getlist('a') == ['1', '2']
    assert d.getlist('b') == ['3']
    assert d.getlist('missing') == []
    assert len(d) == 2
    assert sorted(d) == ['a', 'b']
    assert 'a' in d and 'c' not in d


def test_multidict_get_with_default_and_type():
    d = MultiDict([('n', '5'), ('n', '6'), ('s', 'x')])
    assert d.get('n') == '5'
    assert d.get('n', type=int) == 5
    assert d.get('missing') is None
    assert d.get('missing', 7) == 7
    assert d.get('missing', 7, type=int) == 7
    assert d.getlist('n', type=int) == [5, 6]
    with pytest.raises(ValueError):
        d.get('s', type=int)


def test_multidict_item_access_missing_raises():
    with pytest.raises(KeyError):
        MultiDict()['x']


def test_multidict_from_dict_and_delete():
    d = MultiDict({'a': '1', 'b': '2'})
    assert d['a'] == '1' and d['b'] == '2'
    del d['a']
    assert 'a' not in d
    assert d.getlist('a') == []


def test_multidict_items_values_lists_copy():
    d = MultiDict([('a', '1'), ('a', '2'), ('b', '3')])
    # as in Microdot, the dict holds each key's list of values
    assert list(d.items()) == [('a', ['1', '2']), ('b', ['3'])]
    assert list(d.values()) == [['1', '2'], ['3']]
    assert dict(d) == {'a': ['1', '2'], 'b': ['3']}
    assert d.lists() == [('a', ['1', '2']), ('b', ['3'])]
    assert d.to_dict() == {'a': '1', 'b': '3'}
    assert d.to_dict(flat=False) == {'a': ['1', '2'], 'b': ['3']}
    c = d.copy()
    c['a'] = '9'
    assert c.getlist('a') == ['1', '2', '9']
    assert d.getlist('a') == ['1', '2']
    # getlist returns a copy
    d.getlist('a').append('x')
    assert d.getlist('a') == ['1', '2']


# -- NoCaseDict -----------------------------------------------------------------------------

def test_nocasedict_case_insensitive_access():
    d = NoCaseDict()
    d['Content-Type'] = 'text/plain'
    assert d['content-type'] == 'text/plain'
    assert d['CONTENT-TYPE'] == 'text/plain'
    assert d.get('content-TYPE') == 'text/plain'
    assert d.get('missing') is None
    assert d.get('missing', 'x') == 'x'
    assert 'content-type' in d
    assert 'Content-Type' in d
    assert 'Content-Length' not in d
    assert 42 not in d
    with pytest.raises(KeyError):
        d['missing']


def test_nocasedict_keeps_first_spelling():
    d = NoCaseDict({'Content-Type': 'a'})
    d['content-type'] = 'b'
    d['CONTENT-TYPE'] = 'c'
    assert list(d.keys()) == ['Content-Type']
    assert d['Content-Type'] == 'c'
    assert len(d) == 1
    assert dict(d) == {'Content-Type': 'c'}


def test_nocasedict_delete():
    d = NoCaseDict({'X-Token': '1', 'Other': '2'})
    del d['x-token']
    assert 'X-Token' not in d
    assert list(d.keys()) == ['Other']
    with pytest.raises(KeyError):
        del d['x-token']
    d['x-TOKEN'] = '3'
    assert list(d.keys()) == ['Other', 'x-TOKEN']


def test_nocasedict_update():
    d = NoCaseDict({'Accept': 'a'})
    d.update({'ACCEPT': 'b', 'X-New': 'n'})
    d.update([('x-new', 'm')])
    d.update(Extra='e')
    assert dict(d) == {'Accept': 'b', 'X-New': 'm', 'Extra': 'e'}
    assert d['extra'] == 'e'


def test_nocasedict_setdefault():
    d = NoCaseDict({'Host': 'a'})
    assert d.setdefault('host', 'b') == 'a'
    assert d.setdefault('X-New', 'n') == 'n'
    assert d['x-new'] == 'n'
    assert dict(d) == {'Host': 'a', 'X-New': 'n'}


def test_nocasedict_pop():
    d = NoCaseDict({'Host': 'a', 'Other': 'b'})
    assert d.pop('HOST') == 'a'
    assert 'host' not in d
    assert d.pop('host', 'default') == 'default'
    assert d.pop('host', None) is None
    with pytest.raises(KeyError):
        d.pop('host')
    assert dict(d) == {'Other': 'b'}


def test_nocasedict_popitem_clear_copy():
    d = NoCaseDict({'A': 1})
    assert d.popitem() == ('A', 1)
    assert 'a' not in d
    d['B'] = 2
    c = d.copy()
    assert isinstance(c, NoCaseDict)
    c['b'] = 3
    assert d['B'] == 2 and c['B'] == 3
    c['New'] = 4  # the copy has its own key map
    assert 'new' in c and 'new' not in d and list(c) == ['B', 'New']
    d.clear()
    assert 'b' not in d and len(d) == 0


# -- url encoding ----------------------------------------------------------------------------

def test_urlencode():
    assert urlencode('a b') == 'a+b'
    assert urlencode('a+b') == 'a%2Bb'
    assert urlencode('x&y=z') == 'x%26y%3Dz'
    assert urlencode('\u00e9') == '%C3%A9'


def test_urldecode_str_and_bytes():
    assert urldecode('a+b') == 'a b'
    assert urldecode('a%2Bb') == 'a+b'
    assert urldecode('%C3%A9t%C3%A9') == '\u00e9t\u00e9'
    assert urldecode(b'a+b%2B%C3%A9') == 'a b+\u00e9'
    assert urldecode('plain') == 'plain'
    assert urldecode(b'') == ''


@pytest.mark.parametrize('text', ['hello world', 'a+b=c&d', '\u00e9\u00e8 \u4e2d\u6587',
                                  '100%', '/path?x=1#frag', '', '~-._'])
def test_url_round_trip(text):
    assert urldecode(urlencode(text)) == text
    assert urldecode(urlencode(text).encode()) == text


def test_urldecode_invalid_utf8_does_not_raise():
    assert isinstance(urldecode('%FF%FE'), str)
    assert isinstance(urldecode(b'%FF'), str)


# -- HTTPException / abort -------------------------------------------------------------------

def test_http_exception():
    exc = HTTPException(404)
    assert exc.status_code == 404
    assert exc.reason == '404 error'
    exc = HTTPException(400, 'Bad input')
    assert exc.reason == 'Bad input'
    assert isinstance(exc, Exception)


def test_abort_raises():
    with pytest.raises(HTTPException) as info:
        abort(401, 'Nope')
    assert info.value.status_code == 401
    assert info.value.reason == 'Nope'
    with pytest.raises(HTTPException) as info:
        microdot.Microdot.abort(503)
    assert info.value.status_code == 503


# -- AsyncBytesIO ----------------------------------------------------------------------------

def test_async_bytes_io_reads():
    async def main():
        s = AsyncBytesIO(b'line1\nline2\r\nrest;more')
        assert await s.readline() == b'line1\n'
        assert await s.read(3) == b'lin'
        assert await s.readline() == b'e2\r\n'
        assert await s.readuntil(b';') == b'rest;'
        assert await s.readexactly(2) == b'mo'
        assert await s.read() == b're'
        assert await s.read() == b''
        assert await s.readline() == b''

    run(main())


def test_async_bytes_io_errors_at_end():
    async def main():
        s = AsyncBytesIO(b'abc')
        with pytest.raises(EOFError):
            await s.readexactly(5)
        s = AsyncBytesIO(b'abc')
        with pytest.raises(EOFError):
            await s.readuntil(b';')
        s = AsyncBytesIO(b'no newline')
        assert await s.readline() == b'no newline'

    run(main())


def test_async_bytes_io_iteration_and_writer_methods():
    async def main():
        s = AsyncBytesIO(b'a\nb\nc')
        lines = [line async for line in s]
        assert lines == [b'a\n', b'b\n', b'c']
        await s.awrite(b'+more')  # written into .stream, as Microdot's
        assert s.stream.getvalue() == b'a\nb\nc+more'
        await s.aclose()

    run(main())


# -- helpers ---------------------------------------------------------------------------------

def test_iscoroutine():
    async def coro():
        pass

    def plain():
        pass

    class AsyncCallable:
        async def __call__(self):
            pass

    class SyncCallable:
        def __call__(self):
            pass

    assert iscoroutine(coro)
    assert iscoroutine(functools.partial(coro))
    assert iscoroutine(AsyncCallable())
    assert not iscoroutine(plain)
    assert not iscoroutine(lambda: None)
    assert not iscoroutine(SyncCallable())


def test_helpers_wraps():
    from microdot.helpers import wraps

    def decorator(f):
        @wraps(f)
        async def wrapper(*args, **kwargs):
            return await f(*args, **kwargs)
        return wrapper

    async def original(req):
        """Docstring."""
        return 'x'

    wrapped = decorator(original)
    assert wrapped.__name__ == 'original'
    assert wrapped.__doc__ == 'Docstring.'
    assert iscoroutine(wrapped)
    assert run(wrapped(None)) == 'x'


# -- import paths ----------------------------------------------------------------------------

MAIN_NAMES = ['Microdot', 'Request', 'Response', 'abort', 'redirect', 'send_file',
              'URLPattern', 'AsyncBytesIO', 'iscoroutine', 'HTTPException', 'MultiDict',
              'NoCaseDict', 'urlencode', 'urldecode']


@pytest.mark.parametrize('module', ['microdot', 'microdot.microdot'])
def test_names_importable(module):
    mod = importlib.import_module(module)
    for name in MAIN_NAMES:
        assert getattr(mod, name) is getattr(microdot, name), name
    assert isinstance(mod.__version__, str) and mod.__version__


def test_compat_import_statement():
    from microdot.microdot import Microdot, Response, URLPattern, redirect, send_file
    assert Microdot is microdot.Microdot
    assert Response is microdot.Response
    assert URLPattern is microdot.URLPattern
    assert redirect is microdot.redirect
    assert send_file is microdot.send_file


def test_all_lists_public_names():
    for name in MAIN_NAMES + ['__version__']:
        assert name in microdot.__all__


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        microdot.does_not_exist
