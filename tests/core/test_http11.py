"""Tests for microdot.http11, the sans-I/O HTTP/1.1 parser and serialiser."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdot.http11 import (
    CONNECTION_CLOSED, LAST_CHUNK, NEED_DATA, PAUSED, REASONS, Data,
    EndOfMessage, ProtocolError, RequestHead, RequestParser, encode_chunk,
    serialize_response_head)

ALLOWED_STATUSES = {400, 413, 414, 431, 501, 505}

# Bounded, deterministic-enough property tests that leave no example
# database behind in the working tree.
PROPERTY = {'deadline': None, 'database': None,
            'suppress_health_check': [HealthCheck.too_slow]}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def drive(parser: RequestParser, max_steps: int = 100_000) -> list:
    """Collect events until NEED_DATA or CONNECTION_CLOSED (PAUSED restarts)."""
    events = []
    for _ in range(max_steps):
        event = parser.next_event()
        if event is NEED_DATA:
            return events
        if event is CONNECTION_CLOSED:
            events.append(event)
            return events
        if event is PAUSED:
            parser.start_next_request()
            continue
        events.append(event)
    raise AssertionError('parser did not stop producing events')


def parse(data: bytes, eof: bool = False, **limits) -> list:
    """All events produced for ``data`` fed at once (sentinels except
    CONNECTION_CLOSED removed)."""
    parser = RequestParser(**limits)
    parser.feed(data)
    events = drive(parser)
    if eof:
        parser.feed(b'')
        events += drive(parser)
    return events


def parse_bytewise(data: bytes, eof: bool = False, **limits) -> list:
    """Like parse() but feeding one byte at a time."""
    parser = RequestParser(**limits)
    events = []
    for i in range(len(data)):
        parser.feed(data[i:i + 1])
        events += drive(parser)
    if eof:
        parser.feed(b'')
        events += drive(parser)
    return events


def merge_data(events: list) -> list:
    """Join adjacent Data events (their boundaries depend on the feeding)."""
    merged: list = []
    for event in events:
        if isinstance(event, Data) and merged and \
                isinstance(merged[-1], Data):
            merged[-1] = Data(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


def error_status(data: bytes, eof: bool = True, bytewise: bool = False,
                 **limits) -> int | None:
    """Status code of the ProtocolError raised for ``data``, or None."""
    try:
        (parse_bytewise if bytewise else parse)(data, eof=eof, **limits)
    except ProtocolError as exc:
        assert exc.status_code in ALLOWED_STATUSES
        return exc.status_code
    return None


def head_of(data: bytes, **limits) -> RequestHead:
    events = parse(data, **limits)
    assert isinstance(events[0], RequestHead)
    return events[0]


def req(*header_lines: str, line: str = 'GET / HTTP/1.1',
        body: bytes = b'', host: bool = True) -> bytes:
    lines = [line]
    if host:
        lines.append('Host: example.com')
    lines.extend(header_lines)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


# ---------------------------------------------------------------------------
# basic parsing
# ---------------------------------------------------------------------------

def test_simple_get():
    events = parse(b'GET /hello/w%20rld?a=1&b=2 HTTP/1.1\r\n'
                   b'Host: example.com:8080\r\n'
                   b'User-Agent: test\r\n'
                   b'Accept: */*\r\n\r\n')
    assert len(events) == 2
    head, eom = events
    assert head.method == 'GET'
    assert head.target == '/hello/w%20rld?a=1&b=2'
    assert head.path == '/hello/w%20rld'
    assert head.query == 'a=1&b=2'
    assert head.version == '1.1'
    assert head.headers == [('Host', 'example.com:8080'),
                            ('User-Agent', 'test'), ('Accept', '*/*')]
    assert head.content_length is None
    assert head.chunked is False
    assert head.keep_alive is True
    assert head.expect_continue is False
    assert head.host == 'example.com:8080'
    assert eom == EndOfMessage([])


def test_request_head_uses_slots():
    head = head_of(req())
    assert not hasattr(head, '__dict__')
    with pytest.raises(AttributeError):
        head.foo = 1  # type: ignore[attr-defined]


def test_headers_order_repeats_case_and_ows():
    head = head_of(req('X-A:1', 'x-a:   2  ', 'X-B:\t tab\tinside \t',
                       'X-Empty:', 'X-Empty2:   ', 'X-Latin: caf\xe9'))
    assert head.headers[1:] == [
        ('X-A', '1'), ('x-a', '2'), ('X-B', 'tab\tinside'), ('X-Empty', ''),
        ('X-Empty2', ''), ('X-Latin', 'caf\xe9')]


def test_method_is_case_sensitive_token():
    assert head_of(req(line='get / HTTP/1.1')).method == 'get'
    assert head_of(req(line="M-SEARCH!#$%&'*+.^_`|~ / HTTP/1.1")).method \
        == "M-SEARCH!#$%&'*+.^_`|~"


def test_http10_without_host():
    head = head_of(b'GET / HTTP/1.0\r\n\r\n')
    assert head.version == '1.0'
    assert head.host is None
    assert head.keep_alive is False
    assert head.headers == []


def test_need_data_until_head_complete():
    parser = RequestParser()
    assert parser.at_start
    parser.feed(b'GET / HTTP/1.1\r\nHost: a\r\n')
    assert parser.next_event() is NEED_DATA
    assert not parser.at_start
    parser.feed(b'\r\n')
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == EndOfMessage()
    assert parser.next_event() is PAUSED
    assert parser.next_event() is PAUSED
    parser.start_next_request()
    assert parser.at_start
    assert parser.next_event() is NEED_DATA


def test_content_length_body_streamed():
    parser = RequestParser()
    parser.feed(req('Content-Length: 10', line='POST /p HTTP/1.1',
                    body=b'abc'))
    head = parser.next_event()
    assert head.content_length == 10 and head.chunked is False
    assert parser.next_event() == Data(b'abc')
    assert parser.next_event() is NEED_DATA
    assert parser.buffered == 0
    parser.feed(b'defg')
    assert parser.next_event() == Data(b'defg')
    parser.feed(b'hijXYZ')   # body ends after 'hij'; the rest is kept
    assert parser.next_event() == Data(b'hij')
    assert parser.next_event() == EndOfMessage()
    assert parser.next_event() is PAUSED
    assert parser.buffered == 3


def test_zero_content_length():
    events = parse(req('Content-Length: 0', line='POST / HTTP/1.1'))
    assert events[0].content_length == 0
    assert events[1:] == [EndOfMessage()]


def test_no_framing_means_empty_body():
    parser = RequestParser()
    parser.feed(req(line='POST / HTTP/1.1') + b'GET')
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == EndOfMessage()
    assert parser.buffered == 3


def test_bare_lf_line_endings_accepted():
    crlf = req('Content-Length: 5', 'X-A: b', line='POST /x HTTP/1.1',
               body=b'hello')
    lf = crlf.replace(b'\r\n', b'\n')
    expected = parse(crlf)
    assert parse(lf) == expected
    assert merge_data(parse_bytewise(lf)) == expected


@pytest.mark.parametrize('data', [
    # a field line ended by a bare LF among CRLF lines
    b'POST /x HTTP/1.1\r\nHost: a\r\nX-A: b\nContent-Length: 5\r\n\r\nhello',
    # the request line ended by a bare LF, the rest CRLF
    b'GET /x HTTP/1.1\nHost: a\r\n\r\n',
    # CRLF lines, then an empty line that is a bare LF
    b'GET /x HTTP/1.1\r\nHost: a\r\n\n',
    # bare LF lines, then a CRLF empty line
    b'GET /x HTTP/1.1\nHost: a\n\r\n',
    b'POST /x HTTP/1.1\nHost: example.com\r\nContent-Length: 5\n'
    b'X-A: b\r\n\nhello',
])
def test_bare_lf_among_crlf_lines_rejected(data):
    # A proxy that ends lines only at CRLF would read a different head (issue #13).
    assert error_status(data) == 400
    assert error_status(data, bytewise=True) == 400


def test_bare_lf_head_followed_by_crlf_crlf_in_body():
    # The head ends at the first empty line even if a CRLFCRLF comes later.
    data = b'POST / HTTP/1.1\nHost: a\nContent-Length: 6\n\n\x00\r\n\r\nZ'
    events = parse(data)
    assert events[1] == Data(b'\x00\r\n\r\nZ')


def test_leading_empty_lines_ignored():
    head = head_of(b'\r\n\n\r\n' + req())
    assert head.method == 'GET'
    assert error_status(b'\r\n' * 5 + req()) == 400


def test_leading_empty_lines_between_pipelined_requests():
    events = parse(req('Content-Length: 2', line='POST / HTTP/1.1',
                       body=b'ok') + b'\r\n' + req())
    assert [type(e) for e in events] == [RequestHead, Data, EndOfMessage,
                                         RequestHead, EndOfMessage]


# ---------------------------------------------------------------------------
# request line
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('line', [
    'GET  / HTTP/1.1',
    ' GET / HTTP/1.1',
    'GET / HTTP/1.1 ',
    'GET /  HTTP/1.1',
    'GET\t/ HTTP/1.1',
    'GET /\tHTTP/1.1',
    'GET /a b HTTP/1.1',
    'GET /',
    'GET',
    'GE(T / HTTP/1.1',
    'GE:T / HTTP/1.1',
    'GET /\x7f HTTP/1.1',
    'GET /caf\xe9 HTTP/1.1',
    'GET /\x01 HTTP/1.1',
    '/ HTTP/1.1',
])
def test_bad_request_line(line):
    assert error_status(req(line=line)) == 400


@pytest.mark.parametrize('version', ['HTTP/2.0', 'HTTP/3.0', 'HTTP/1.2',
                                     'HTTP/0.9', 'HTTP/9.9'])
def test_unsupported_version(version):
    assert error_status(req(line=f'GET / {version}')) == 505


@pytest.mark.parametrize('version', ['HTTP/1.1x', 'http/1.1', 'HTTP/1',
                                     'HTTP/1.1.1', 'HTTP/11.1', 'HTTP/',
                                     'HTTP/1.', 'HTTP/a.b', 'HTTPS/1.1',
                                     'HTTP /1.1', 'HTTP/1.1\t'])
def test_malformed_version(version):
    assert error_status(req(line=f'GET / {version}')) == 400


def test_bare_cr_in_request_line():
    assert error_status(b'GET /\r HTTP/1.1\r\nHost: a\r\n\r\n') == 400
    assert error_status(b'GET / HTTP/1.1\r\rHost: a\r\n\r\n') == 400
    assert error_status(b'\rGET / HTTP/1.1\r\nHost: a\r\n\r\n') == 400


def test_request_line_length_limit():
    ok = req(line='GET /' + 'a' * 86 + ' HTTP/1.1')  # line is 100 bytes
    assert head_of(ok, max_request_line=100).method == 'GET'
    long = req(line='GET /' + 'a' * 87 + ' HTTP/1.1')
    assert error_status(long, max_request_line=100) == 414
    assert error_status(long, max_request_line=100, bytewise=True) == 414
    # Rejected before the line is complete.
    assert error_status(b'GET /' + b'a' * 200, eof=False,
                        max_request_line=100) == 414
    assert error_status(b'GET /' + b'a' * 200, eof=False,
                        max_request_line=100, bytewise=True) == 414
    # A long line ended by a bare LF while waiting for the rest of the head.
    assert error_status(b'GET /' + b'a' * 200 + b' HTTP/1.1\n', eof=False,
                        max_request_line=100) == 414


# ---------------------------------------------------------------------------
# request targets
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('target,path,query', [
    ('/', '/', ''),
    ('/a/b', '/a/b', ''),
    ('/a?', '/a', ''),
    ('/a?x=1&y=2?z', '/a', 'x=1&y=2?z'),
    ('/%7Euser/a%20b?q=%20', '/%7Euser/a%20b', 'q=%20'),
    ('//double', '//double', ''),
])
def test_origin_form(target, path, query):
    head = head_of(req(line=f'GET {target} HTTP/1.1'))
    assert (head.target, head.path, head.query) == (target, path, query)
    assert head.host == 'example.com'


@pytest.mark.parametrize('target,host,path,query', [
    ('http://other.org/p?q=1', 'other.org', '/p', 'q=1'),
    ('https://other.org:8443/a/b', 'other.org:8443', '/a/b', ''),
    ('HTTP://Other.ORG', 'Other.ORG', '/', ''),
    ('http://h?x', 'h', '/', 'x'),
    ('http://[::1]:80/', '[::1]:80', '/', ''),
    ('http://127.0.0.1/p', '127.0.0.1', '/p', ''),
])
def test_absolute_form(target, host, path, query):
    for method in ('GET', 'POST', 'OPTIONS', 'DELETE'):
        head = head_of(req(line=f'{method} {target} HTTP/1.1'))
        assert head.target == target
        assert (head.host, head.path, head.query) == (host, path, query)


@pytest.mark.parametrize('target', [
    'http://user:pw@host/p', 'http:///p', 'http://', 'ftp://host/p',
    'example.com/p', 'example.com:80', 'http:/host/p', 'mailto:a@b',
    'http://ho st/', 'http://host:80x/',
])
def test_bad_targets(target):
    assert error_status(req(line=f'GET {target} HTTP/1.1')) == 400


def test_absolute_form_still_requires_host_header():
    assert error_status(req(line='GET http://a/ HTTP/1.1', host=False)) \
        == 400
    assert head_of(req(line='GET http://a/ HTTP/1.0', host=False)).host \
        == 'a'


def test_authority_form_only_for_connect():
    head = head_of(req(line='CONNECT example.com:443 HTTP/1.1'))
    assert head.method == 'CONNECT'
    assert head.target == 'example.com:443'
    assert head.host == 'example.com:443'
    assert head.path == '/' and head.query == ''
    assert head_of(req(line='CONNECT [::1]:8080 HTTP/1.1')).host \
        == '[::1]:8080'
    assert error_status(req(line='GET example.com:443 HTTP/1.1')) == 400
    assert error_status(req(line='CONNECT / HTTP/1.1')) == 400
    assert error_status(req(line='CONNECT example.com HTTP/1.1')) == 400
    assert error_status(req(line='CONNECT example.com: HTTP/1.1')) == 400
    assert error_status(req(line='CONNECT http://a:1/ HTTP/1.1')) == 400


def test_asterisk_form_only_for_options():
    head = head_of(req(line='OPTIONS * HTTP/1.1'))
    assert (head.target, head.path, head.query) == ('*', '*', '')
    assert error_status(req(line='GET * HTTP/1.1')) == 400
    assert error_status(req(line='OPTIONS *x HTTP/1.1')) == 400


# ---------------------------------------------------------------------------
# Host header
# ---------------------------------------------------------------------------

def test_host_header_rules():
    assert error_status(req(host=False)) == 400
    assert error_status(req('Host: other')) == 400
    assert error_status(req('host: example.com')) == 400
    assert error_status(req('Host: other', line='GET / HTTP/1.0')) == 400
    assert head_of(req(host=False, line='GET / HTTP/1.0')).host is None
    assert head_of(b'GET / HTTP/1.1\r\nHost:\r\n\r\n').host == ''
    assert head_of(b'GET / HTTP/1.1\r\nhOsT: a.b:1\r\n\r\n').host == 'a.b:1'
    assert head_of(b'GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n').host == '[::1]'
    assert head_of(b'GET / HTTP/1.1\r\nHost: a:\r\n\r\n').host == 'a:'


@pytest.mark.parametrize('host', ['a b', 'a/b', 'a@b', 'a:b', '[::1',
                                  'a:1:2', 'a?b', 'a#b', 'caf\xe9'])
def test_invalid_host_header(host):
    data = f'GET / HTTP/1.1\r\nHost: {host}\r\n\r\n'.encode('latin-1')
    assert error_status(data) == 400


# ---------------------------------------------------------------------------
# header section limits and syntax
# ---------------------------------------------------------------------------

def test_header_line_limit():
    ok = req('X-A: ' + 'a' * 95)   # field line of exactly 100 bytes
    assert head_of(ok, max_header_line=100).headers[1][1] == 'a' * 95
    long = req('X-A: ' + 'a' * 96)
    assert error_status(long, max_header_line=100) == 431
    assert error_status(long, max_header_line=100, bytewise=True) == 431
    partial = b'GET / HTTP/1.1\r\nHost: a\r\nX-A: ' + b'a' * 200
    assert error_status(partial, eof=False, max_header_line=100) == 431


def test_header_bytes_limit():
    lines = [f'X-H{i}: {"v" * 40}' for i in range(30)]
    data = req(*lines)
    assert error_status(data, max_header_bytes=1000) == 431
    assert error_status(data, max_header_bytes=1000, bytewise=True) == 431
    assert error_status(data[:-4], eof=False, max_header_bytes=1000) == 431
    assert error_status(data, max_header_bytes=10000) is None


def test_header_count_limit():
    ok = req(*[f'X-{i}: v' for i in range(9)])   # plus Host = 10 fields
    assert len(head_of(ok, max_headers=10).headers) == 10
    assert error_status(req(*[f'X-{i}: v' for i in range(10)]),
                        max_headers=10) == 431


def test_huge_head_without_terminator_is_rejected_early():
    parser = RequestParser(max_header_bytes=4096)
    parser.feed(b'GET / HTTP/1.1\r\n')
    assert parser.next_event() is NEED_DATA
    with pytest.raises(ProtocolError) as info:
        for _ in range(1000):
            parser.feed(b'X: ' + b'y' * 60 + b'\r\n')
            parser.next_event()
    assert info.value.status_code == 431
    assert parser.buffered < 10_000


@pytest.mark.parametrize('line', [
    ': empty-name',
    'X-A : space-before-colon',
    'X-A\t: tab-before-colon',
    ' X-Folded: v',
    'No-Colon',
    'X(y): bad-name',
    'X y: bad-name',
    'X-A: nul\x00here',
    'X-A: ctl\x01here',
    'X-A: del\x7fhere',
    'X-A: vt\x0bhere',
    'X-A: esc\x1bhere',
    'Caf\xe9: obs-text-name',
])
def test_bad_header_lines(line):
    assert error_status(req(line)) == 400


def test_obs_fold_rejected():
    data = b'GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n'
    assert error_status(data) == 400
    data = b'GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n'
    assert error_status(data) == 400
    # whitespace between the request line and the first field
    data = b'GET / HTTP/1.1\r\n Host: a\r\n\r\n'
    assert error_status(data) == 400


def test_cr_in_header_value_rejected():
    assert error_status(b'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n') \
        == 400
    assert error_status(b'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n') \
        == 400
    assert error_status(b'GET / HTTP/1.1\nHost: a\nX: a\rb\n\n') == 400
    assert error_status(b'GET / HTTP/1.1\nHost: a\nX: a\r\r\n\n') == 400


def test_allowed_value_characters():
    value = bytes(range(0x21, 0x7f)) + b' \t' + bytes(range(0x80, 0x100))
    data = b'GET / HTTP/1.1\r\nHost: a\r\nX: ' + value + b'x\r\n\r\n'
    head = head_of(data)
    assert head.headers[1] == ('X', (value + b'x').decode('latin-1'))


def test_error_reason_never_echoes_input():
    marker = '<script>alert(1)</script>'
    for data in (req(f'{marker}: x'),
                 req(line=f'GET /{marker}\x01 HTTP/1.1'),
                 req(line=f'GET /{marker} HTTP/{marker}'),
                 req(line=f'{marker} / HTTP/1.1'),
                 req(f'Content-Length: {marker}'),
                 req(f'Transfer-Encoding: {marker}')):
        with pytest.raises(ProtocolError) as info:
            parse(data)
        assert 'script' not in info.value.reason
        assert 'script' not in str(info.value)


def test_protocol_error_attributes_and_pickling():
    import pickle
    exc = ProtocolError(431, 'too many header fields')
    assert (exc.status_code, exc.reason, str(exc)) == \
        (431, 'too many header fields', 'too many header fields')
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.status_code, copy.reason) == (431, 'too many header fields')
    assert pickle.loads(pickle.dumps(NEED_DATA)) is NEED_DATA


def test_protocol_error_is_sticky():
    parser = RequestParser()
    parser.feed(b'GET / HTTP/9.9\r\nHost: a\r\n\r\n')
    with pytest.raises(ProtocolError) as first:
        parser.next_event()
    assert first.value.status_code == 505
    with pytest.raises(ProtocolError) as second:
        parser.next_event()
    assert second.value is first.value
    parser.feed(b'GET / HTTP/1.1\r\nHost: a\r\n\r\n')  # ignored
    with pytest.raises(ProtocolError):
        parser.next_event()


# ---------------------------------------------------------------------------
# Content-Length
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('headers,expected', [
    (['Content-Length: 5'], 5),
    (['Content-Length:5'], 5),
    (['Content-Length:   5   '], 5),
    (['Content-Length: 005'], 5),
    (['Content-Length: 0'], 0),
])
def test_content_length_valid(headers, expected):
    body = b'x' * expected
    events = parse(req(*headers, line='POST / HTTP/1.1', body=body))
    assert events[0].content_length == expected
    assert merge_data(events[1:]) == ([Data(body)] if body else []) + \
        [EndOfMessage()]


@pytest.mark.parametrize('value', ['+5', '-5', '-0', '5 5', '0x5', '5.0',
                                   '', '5,', ',5', '5,,5', 'five', '5;',
                                   '\xb2', '1e3', '5, 6', '5,5', '5, 5',
                                   '5, 5 ,5'])
def test_content_length_invalid(value):
    assert error_status(req(f'Content-Length: {value}',
                            line='POST / HTTP/1.1')) == 400


def test_content_length_conflicting_fields():
    assert error_status(req('Content-Length: 5', 'Content-Length: 6',
                            line='POST / HTTP/1.1')) == 400


@pytest.mark.parametrize('fields', [
    ('Content-Length: 5', 'content-length: 5'),
    ('Content-Length: 5, 5', 'Content-Length: 5'),
])
def test_content_length_repeated_fields_rejected(fields):
    # Identical repeats may be collapsed per RFC 9110, but a proxy may not: refused.
    assert error_status(req(*fields, line='POST / HTTP/1.1', body=b'hello')) == 400


def test_different_content_types_rejected():
    assert error_status(req('Content-Type: text/plain', 'Content-Type: application/json',
                            line='POST / HTTP/1.1')) == 400
    # the same value twice says nothing two ways
    head = head_of(req('Content-Type: text/plain', 'content-type: text/plain',
                       line='POST / HTTP/1.1'))
    assert head.headers[1:] == [('Content-Type', 'text/plain'),
                                ('content-type', 'text/plain')]


@pytest.mark.parametrize('name', ['Content_Length', 'Transfer_Encoding', 'content_type',
                                  'Keep_Alive', 'Proxy_Connection'])
def test_underscore_names_that_read_as_framing_fields_rejected(name):
    # CGI/WSGI-style translation ('-' and '_' both become '_') would take them for
    # the framing field while a proxy ignores them (issue #13).
    assert error_status(req(f'{name}: 5', line='POST / HTTP/1.1')) == 400


def test_other_underscore_names_accepted():
    head = head_of(req('X_Custom: 1', 'Content_MD5: x', 'Host_: y'))
    assert head.headers[1:] == [('X_Custom', '1'), ('Content_MD5', 'x'), ('Host_', 'y')]


def test_content_length_huge():
    head = head_of(req('Content-Length: 99999999999999',
                       line='POST / HTTP/1.1'))
    assert head.content_length == 99999999999999
    assert head_of(req(f'Content-Length: {2**63 - 1}',
                       line='POST / HTTP/1.1')).content_length == 2**63 - 1
    assert error_status(req(f'Content-Length: {2**63}'), eof=False) == 413
    assert error_status(req('Content-Length: ' + '9' * 5000),
                        eof=False) == 413


def test_content_length_body_never_exceeds_declared():
    parser = RequestParser()
    parser.feed(req('Content-Length: 4', line='POST / HTTP/1.1',
                    body=b'abcdefgh'))
    events = drive(parser)
    assert events[1:] == [Data(b'abcd'), EndOfMessage()]
    assert parser.buffered == 4


# ---------------------------------------------------------------------------
# Transfer-Encoding
# ---------------------------------------------------------------------------

CHUNKED_BODY = b'5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'


@pytest.mark.parametrize('headers', [
    ['Transfer-Encoding: chunked'],
    ['Transfer-Encoding: Chunked'],
    ['transfer-encoding: CHUNKED'],
    ['Transfer-Encoding:  chunked  '],
    ['Transfer-Encoding: ,chunked,'],
])
def test_transfer_encoding_chunked(headers):
    events = parse(req(*headers, line='POST / HTTP/1.1', body=CHUNKED_BODY))
    assert events[0].chunked is True
    assert events[0].content_length is None
    assert merge_data(events[1:]) == [Data(b'hello world'), EndOfMessage()]


@pytest.mark.parametrize('headers,status', [
    (['Transfer-Encoding: gzip, chunked'], 501),
    (['Transfer-Encoding: deflate, chunked'], 501),
    (['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'], 501),
    (['Transfer-Encoding: identity'], 501),
    (['Transfer-Encoding: gzip'], 501),
    (['Transfer-Encoding: compress'], 501),
    (['Transfer-Encoding: x-custom'], 501),
    (['Transfer-Encoding: chunked, gzip'], 400),
    (['Transfer-Encoding: chunked', 'Transfer-Encoding: gzip'], 400),
    (['Transfer-Encoding: chunked, chunked'], 400),
    (['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], 400),
    (['Transfer-Encoding: gzip, chunked, chunked'], 400),
    (['Transfer-Encoding: chunked;q=1'], 400),
    (['Transfer-Encoding: '], 400),
    (['Transfer-Encoding: ,'], 400),
    (['Transfer-Encoding: chu nked'], 400),
    (['Transfer-Encoding: "chunked"'], 400),
    (['Transfer-Encoding: chunked', 'Content-Length: 5'], 400),
    (['Content-Length: 5', 'Transfer-Encoding: chunked'], 400),
])
def test_transfer_encoding_errors(headers, status):
    data = req(*headers, line='POST / HTTP/1.1', body=CHUNKED_BODY)
    assert error_status(data) == status


def test_transfer_encoding_on_http10_rejected():
    data = req('Transfer-Encoding: chunked', line='POST / HTTP/1.0',
               body=CHUNKED_BODY)
    assert error_status(data) == 400


# ---------------------------------------------------------------------------
# chunked bodies
# ---------------------------------------------------------------------------

def chunked(body: bytes) -> bytes:
    return req('Transfer-Encoding: chunked', line='POST /up HTTP/1.1',
               body=body)


def test_chunked_events_streamed():
    parser = RequestParser()
    parser.feed(chunked(b'5\r\nhel'))
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == Data(b'hel')
    assert parser.next_event() is NEED_DATA
    parser.feed(b'lo\r\n3')
    assert parser.next_event() == Data(b'lo')
    assert parser.next_event() is NEED_DATA
    parser.feed(b'\r\nabc\r')
    assert parser.next_event() == Data(b'abc')
    assert parser.next_event() is NEED_DATA
    parser.feed(b'\n0\r\n\r')
    assert parser.next_event() is NEED_DATA
    parser.feed(b'\n')
    assert parser.next_event() == EndOfMessage([])
    assert parser.next_event() is PAUSED


@pytest.mark.parametrize('size_line,size', [
    ('5', 5), ('05', 5), ('0000000000000000000000005', 5), ('a', 10),
    ('A', 10), ('1f', 31), ('5;name=value', 5), ('5;name', 5),
    ('5;a=1;b;c="quoted ; \\" value"', 5), ('5 ;a=b', 5), ('5\t; a = b', 5),
    ('5;a=b ;c=d', 5), ('5;a="\xe9"', 5),
])
def test_chunk_size_and_extensions(size_line, size):
    body = size_line.encode('latin-1') + b'\r\n' + b'x' * size + \
        b'\r\n0;last=1\r\n\r\n'
    events = parse(chunked(body))
    assert merge_data(events[1:]) == [Data(b'x' * size), EndOfMessage()]


@pytest.mark.parametrize('size_line', [
    '', ' 5', '5 ', '+5', '-5', '0x5', 'g', '5g', ';a=b', '5;', '5;a=',
    '5;a="unterminated', '5;a b', '5;=b', '5;a=b c', '5,a', '5\x00',
    '5;a="\x01"', '5\r',
])
def test_chunk_size_invalid(size_line):
    body = size_line.encode('latin-1') + b'\r\nxxxxx\r\n0\r\n\r\n'
    assert error_status(chunked(body)) == 400


def test_chunk_size_overflow():
    assert error_status(chunked(b'8000000000000000\r\n')) == 400
    assert error_status(chunked(b'ffffffffffffffffffff\r\n')) == 400
    parser = RequestParser()
    parser.feed(chunked(b'7fffffffffffffff\r\nabc'))
    assert parser.next_event().chunked
    assert parser.next_event() == Data(b'abc')


def test_chunk_line_limit():
    ext = ';a=' + 'b' * 100
    assert error_status(chunked(f'5{ext}\r\nhello\r\n0\r\n\r\n'.encode()),
                        max_chunk_line=50) == 400
    assert error_status(chunked(f'5{ext}'.encode()), eof=False,
                        max_chunk_line=50) == 400
    assert error_status(chunked(f'5{ext}\r\nhello\r\n0\r\n\r\n'.encode()),
                        max_chunk_line=200) is None


@pytest.mark.parametrize('body', [
    b'5\r\nhelloX\r\n0\r\n\r\n',
    b'5\r\nhello\rX0\r\n\r\n',
    b'5\r\nhello  \r\n0\r\n\r\n',
    b'5\r\nhello\r\r\n0\r\n\r\n',
    b'5\r\nhellohello\r\n0\r\n\r\n',
])
def test_chunk_data_must_end_with_crlf(body):
    assert error_status(chunked(body)) == 400


def test_chunked_bare_lf_accepted():
    # a request written with bare LF throughout (e.g. by hand)
    events = parse(chunked(b'5\nhello\n3;x=y\nabc\n0\nX-T: 1\n\n').replace(
        b'\r\n', b'\n'))
    assert merge_data(events[1:]) == [Data(b'helloabc'),
                                      EndOfMessage([('X-T', '1')])]


@pytest.mark.parametrize('body', [
    b'5\nhello\r\n0\r\n\r\n',          # chunk-size line
    b'5\r\nhello\n0\r\n\r\n',          # after the chunk data
    b'5\r\nhello\r\n0\n\r\n',          # last-chunk line
    b'5\r\nhello\r\n0\r\n\n',          # end of the (empty) trailer section
    b'5\r\nhello\r\n0\r\nX-T: 1\n\n',  # trailer section
])
def test_chunked_bare_lf_rejected_after_a_crlf_head(body):
    assert error_status(chunked(body)) == 400
    assert error_status(chunked(body), bytewise=True) == 400


def test_chunked_trailers():
    body = (b'5\r\nhello\r\n0\r\n'
            b'X-Checksum: abc\r\nx-checksum:  def \r\nServer-Timing: a\r\n'
            b'\r\n')
    events = parse(chunked(body) + req())
    assert events[2] == EndOfMessage([('X-Checksum', 'abc'),
                                      ('x-checksum', 'def'),
                                      ('Server-Timing', 'a')])
    assert isinstance(events[3], RequestHead)


def test_chunked_trailers_bytewise():
    body = chunked(b'5;e=1\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n')
    assert merge_data(parse_bytewise(body)) == merge_data(parse(body))


@pytest.mark.parametrize('name', [
    'Content-Length', 'Transfer-Encoding', 'Host', 'Trailer', 'TE',
    'Connection', 'Keep-Alive', 'Upgrade', 'Expect', 'Authorization',
    'Cookie', 'Set-Cookie', 'Content-Type', 'Content-Encoding',
    'Content-Range', 'Cache-Control', 'proxy-authorization', 'RANGE',
])
def test_forbidden_trailer_fields(name):
    body = f'5\r\nhello\r\n0\r\n{name}: x\r\n\r\n'.encode()
    assert error_status(chunked(body)) == 400


@pytest.mark.parametrize('trailer', [
    ' X: folded', 'X : v', 'NoColon', 'X: a\x00b', 'X: a\rb', ': v',
])
def test_bad_trailer_lines(trailer):
    body = f'0\r\nX-Ok: 1\r\n{trailer}\r\n\r\n'.encode()
    assert error_status(chunked(body)) == 400


def test_trailer_limits():
    many = ''.join(f'X-{i}: v\r\n' for i in range(20))
    assert error_status(chunked(f'0\r\n{many}\r\n'.encode()),
                        max_headers=10) == 431
    long = 'X: ' + 'v' * 200
    assert error_status(chunked(f'0\r\n{long}\r\n\r\n'.encode()),
                        max_header_line=100) == 431
    assert error_status(chunked(f'0\r\n{long}'.encode()), eof=False,
                        max_header_line=100) == 431
    assert error_status(chunked(f'0\r\n{many}'.encode()), eof=False,
                        max_header_bytes=100) == 431


def test_encode_chunk_round_trip():
    body = (encode_chunk(b'hello ') + encode_chunk(b'') +
            encode_chunk(b'x' * 300) + encode_chunk(memoryview(b'!')) +
            LAST_CHUNK)
    events = parse(chunked(body))
    assert merge_data(events[1:]) == [Data(b'hello ' + b'x' * 300 + b'!'),
                                      EndOfMessage()]


def test_encode_chunk():
    assert encode_chunk(b'') == b''
    assert encode_chunk(b'hello') == b'5\r\nhello\r\n'
    assert encode_chunk(b'x' * 300) == b'12c\r\n' + b'x' * 300 + b'\r\n'
    assert encode_chunk(bytearray(b'ab')) == b'2\r\nab\r\n'
    assert LAST_CHUNK == b'0\r\n\r\n'


# ---------------------------------------------------------------------------
# EOF handling
# ---------------------------------------------------------------------------

def test_eof_between_requests():
    parser = RequestParser()
    parser.feed(b'')
    assert parser.next_event() is CONNECTION_CLOSED
    assert parser.next_event() is CONNECTION_CLOSED

    parser = RequestParser()
    parser.feed(req())
    parser.feed(b'')
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == EndOfMessage()
    assert parser.next_event() is PAUSED
    parser.start_next_request()
    assert parser.next_event() is CONNECTION_CLOSED

    # empty lines after a request are not a request either
    assert parse(req() + b'\r\n', eof=True)[-1] is CONNECTION_CLOSED


@pytest.mark.parametrize('data', [
    b'G',
    b'GET / HTTP/1.1\r\n',
    b'GET / HTTP/1.1\r\nHost: a\r\n\r',
    b'\r',
    req('Content-Length: 5', line='POST / HTTP/1.1', body=b'abc'),
    chunked(b''),
    chunked(b'5'),
    chunked(b'5\r\nhel'),
    chunked(b'5\r\nhello'),
    chunked(b'5\r\nhello\r'),
    chunked(b'5\r\nhello\r\n0\r\n'),
    chunked(b'5\r\nhello\r\n0\r\n\r'),
    chunked(b'5\r\nhello\r\n0\r\nX-T: 1\r\n'),
])
def test_eof_inside_request(data):
    assert error_status(data, eof=False) is None
    assert error_status(data, eof=True) == 400
    assert error_status(data, eof=True, bytewise=True) == 400


def test_feed_after_eof_is_an_error():
    parser = RequestParser()
    parser.feed(b'')
    parser.feed(b'')
    with pytest.raises(RuntimeError):
        parser.feed(b'GET')


def test_start_next_request_before_end_is_an_error():
    parser = RequestParser()
    with pytest.raises(RuntimeError):
        parser.start_next_request()
    parser.feed(req('Content-Length: 3', line='POST / HTTP/1.1'))
    parser.next_event()
    with pytest.raises(RuntimeError):
        parser.start_next_request()


# ---------------------------------------------------------------------------
# pipelining, byte-by-byte delivery, buffering
# ---------------------------------------------------------------------------

PIPELINE = (
    req(line='GET /one HTTP/1.1')
    + req('Content-Length: 11', 'Content-Type: text/plain',
          line='POST /two?x=1 HTTP/1.1', body=b'hello world')
    + chunked(b'3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: v\r\n\r\n')
    + req('Connection: close', line='DELETE /four HTTP/1.1')
)


def test_pipelining_in_one_feed():
    parser = RequestParser()
    parser.feed(PIPELINE)
    seen = []
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            break
        if event is PAUSED:
            seen.append('PAUSED')
            # nothing is lost while paused, and pausing is idempotent
            assert parser.next_event() is PAUSED
            parser.start_next_request()
            continue
        seen.append(event)
    heads = [e for e in seen if isinstance(e, RequestHead)]
    assert [h.target for h in heads] == ['/one', '/two?x=1', '/up', '/four']
    assert [h.keep_alive for h in heads] == [True, True, True, False]
    assert merge_data(seen) == [
        heads[0], EndOfMessage(), 'PAUSED',
        heads[1], Data(b'hello world'), EndOfMessage(), 'PAUSED',
        heads[2], Data(b'abcde'), EndOfMessage([('X-T', 'v')]), 'PAUSED',
        heads[3], EndOfMessage(), 'PAUSED']
    assert parser.buffered == 0


def test_byte_by_byte_gives_same_events():
    expected = parse(PIPELINE, eof=True)
    assert expected[-1] is CONNECTION_CLOSED
    assert merge_data(parse_bytewise(PIPELINE, eof=True)) == \
        merge_data(expected)
    lf = PIPELINE.replace(b'\r\n', b'\n')
    assert merge_data(parse_bytewise(lf, eof=True)) == merge_data(expected)


@given(st.lists(st.integers(0, len(PIPELINE)), max_size=12))
@settings(max_examples=100, **PROPERTY)
def test_arbitrary_splits_give_same_events(cuts):
    expected = merge_data(parse(PIPELINE, eof=True))
    points = sorted(set(cuts))
    parser = RequestParser()
    events = []
    start = 0
    for point in points + [len(PIPELINE)]:
        if point == start:
            continue   # b'' would mean EOF
        parser.feed(PIPELINE[start:point])
        start = point
        events += drive(parser)
    parser.feed(b'')
    events += drive(parser)
    assert merge_data(events) == expected


def test_pipelining_with_pause_keeps_bytes():
    parser = RequestParser()
    parser.feed(req(line='GET /a HTTP/1.1'))
    assert parser.next_event().target == '/a'
    assert parser.next_event() == EndOfMessage()
    assert parser.at_start
    parser.feed(req(line='GET /b HTTP/1.1'))   # arrives while paused
    assert not parser.at_start
    assert parser.next_event() is PAUSED
    parser.start_next_request()
    assert parser.next_event().target == '/b'


def test_buffered_and_at_start():
    parser = RequestParser()
    assert parser.buffered == 0 and parser.at_start
    parser.feed(b'\r\n')
    assert parser.next_event() is NEED_DATA
    assert parser.at_start          # an empty line is not a request yet
    parser.feed(b'GET / HTTP/1.1\r\nHost: a\r\n')
    assert parser.buffered == 25
    assert parser.next_event() is NEED_DATA
    assert not parser.at_start
    parser.feed(b'\r\nGET /')
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.buffered == 5
    assert parser.next_event() == EndOfMessage()
    assert not parser.at_start      # the next request has started
    parser.start_next_request()
    assert parser.next_event() is NEED_DATA
    assert parser.buffered == 5


def test_large_body_across_many_feeds():
    body = bytes(range(256)) * 1000
    parser = RequestParser()
    parser.feed(req(f'Content-Length: {len(body)}', line='PUT / HTTP/1.1'))
    assert parser.next_event().content_length == len(body)
    received = []
    for i in range(0, len(body), 1000):
        parser.feed(body[i:i + 1000])
        event = parser.next_event()
        assert isinstance(event, Data) and len(event.data) == 1000
        received.append(event.data)
        assert parser.buffered == 0
    assert b''.join(received) == body
    assert parser.next_event() == EndOfMessage()


def test_memoryview_and_bytearray_feeds():
    data = req('Content-Length: 3', line='POST / HTTP/1.1', body=b'abc')
    parser = RequestParser()
    parser.feed(memoryview(data)[:10])
    parser.feed(bytearray(data[10:]))
    events = drive(parser)
    assert merge_data(events) == merge_data(parse(data))
    assert all(type(e.data) is bytes for e in events if isinstance(e, Data))


# ---------------------------------------------------------------------------
# Connection / keep-alive / Expect / Upgrade
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('version,connection,keep_alive', [
    ('1.1', None, True),
    ('1.1', 'keep-alive', True),
    ('1.1', 'close', False),
    ('1.1', 'Close', False),
    ('1.1', 'CLOSE', False),
    ('1.1', 'Upgrade', True),
    ('1.1', 'keep-alive, close', False),
    ('1.1', 'Upgrade,close', False),
    ('1.1', 'closed', True),
    ('1.0', None, False),
    ('1.0', 'keep-alive', True),
    ('1.0', 'Keep-Alive', True),
    ('1.0', 'close', False),
    ('1.0', 'keep-alive, close', False),
    ('1.0', 'TE, keep-alive', True),
    ('1.0', 'foo', False),
])
def test_keep_alive(version, connection, keep_alive):
    headers = [f'Connection: {connection}'] if connection else []
    head = head_of(req(*headers, line=f'GET / HTTP/{version}'))
    assert head.keep_alive is keep_alive


def test_keep_alive_with_several_connection_fields():
    assert head_of(req('Connection: Upgrade', 'Connection: close')) \
        .keep_alive is False
    assert head_of(req('Connection: foo', 'Connection: keep-alive',
                       line='GET / HTTP/1.0')).keep_alive is True


@pytest.mark.parametrize('version,expect,result', [
    ('1.1', None, False),
    ('1.1', '100-continue', True),
    ('1.1', '100-Continue', True),
    ('1.1', '100-CONTINUE', True),
    ('1.1', 'something-else', False),
    ('1.0', '100-continue', False),
])
def test_expect_continue(version, expect, result):
    headers = [f'Expect: {expect}'] if expect else []
    head = head_of(req('Content-Length: 3', *headers,
                       line=f'POST / HTTP/{version}'))
    assert head.expect_continue is result


def test_upgrade_and_take_buffered():
    data = req('Connection: Upgrade', 'Upgrade: websocket',
               'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
               'Sec-WebSocket-Version: 13', line='GET /ws HTTP/1.1')
    frame = b'\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'
    parser = RequestParser()
    parser.feed(data + frame)
    head = parser.next_event()
    assert ('Upgrade', 'websocket') in head.headers
    assert parser.buffered == len(frame)
    assert parser.take_buffered() == frame
    assert parser.buffered == 0
    assert parser.take_buffered() == b''


def test_take_buffered_after_partial_feeds():
    parser = RequestParser()
    parser.feed(req('Upgrade: websocket', line='GET /ws HTTP/1.1')[:-1])
    assert parser.next_event() is NEED_DATA
    parser.feed(b'\nab')
    parser.feed(b'cd')
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.take_buffered() == b'abcd'


# ---------------------------------------------------------------------------
# response head serialisation
# ---------------------------------------------------------------------------

def test_serialize_basic():
    assert serialize_response_head(200, None, [
        ('Content-Type', 'text/plain'), ('Content-Length', '5')]) == (
        b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
        b'Content-Length: 5\r\n\r\n')
    assert serialize_response_head(404, 'Nope', []) == \
        b'HTTP/1.1 404 Nope\r\n\r\n'
    assert serialize_response_head(204, None, [], version='1.0') == \
        b'HTTP/1.0 204 No Content\r\n\r\n'
    assert serialize_response_head(200, '', []) == b'HTTP/1.1 200 \r\n\r\n'


def test_serialize_header_forms():
    head = serialize_response_head(200, None, {
        'Set-Cookie': ['a=1', 'b=2'], 'Content-Length': 42,
        'X-Bytes': b'caf\xe9', 'X-Latin': 'caf\xe9', 'X-Uni': '\u2603'})
    assert head == (b'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\n'
                    b'Set-Cookie: b=2\r\nContent-Length: 42\r\n'
                    b'X-Bytes: caf\xe9\r\nX-Latin: caf\xe9\r\n'
                    b'X-Uni: \xe2\x98\x83\r\n\r\n')
    assert serialize_response_head(200, None, iter([('A', 'b')])) == \
        b'HTTP/1.1 200 OK\r\nA: b\r\n\r\n'


@pytest.mark.parametrize('code,phrase', [
    (100, 'Continue'), (101, 'Switching Protocols'), (200, 'OK'),
    (206, 'Partial Content'), (301, 'Moved Permanently'),
    (308, 'Permanent Redirect'), (413, 'Content Too Large'),
    (414, 'URI Too Long'), (418, "I'm a teapot"),
    (421, 'Misdirected Request'), (422, 'Unprocessable Content'),
    (425, 'Too Early'), (426, 'Upgrade Required'),
    (428, 'Precondition Required'), (429, 'Too Many Requests'),
    (431, 'Request Header Fields Too Large'),
    (451, 'Unavailable For Legal Reasons'),
    (505, 'HTTP Version Not Supported'), (506, 'Variant Also Negotiates'),
    (507, 'Insufficient Storage'), (508, 'Loop Detected'),
    (510, 'Not Extended'), (511, 'Network Authentication Required'),
])
def test_reasons(code, phrase):
    assert REASONS[code] == phrase
    assert serialize_response_head(code, None, []) == \
        f'HTTP/1.1 {code} {phrase}\r\n\r\n'.encode()


@pytest.mark.parametrize('code', [199, 299, 399, 499, 599, 600, 999])
def test_unknown_status_fallback_reason(code):
    line = serialize_response_head(code, None, []).split(b'\r\n')[0]
    reason = line.split(b' ', 2)[2]
    assert reason and reason != b'N/A'
    assert line.startswith(f'HTTP/1.1 {code} '.encode())


@pytest.mark.parametrize('headers', [
    [('X-A', 'a\r\nSet-Cookie: evil=1')],
    [('X-A', 'a\nb')],
    [('X-A', 'a\rb')],
    [('X-A', 'a\x00b')],
    [('X-A', b'a\r\nb')],
    [('X-A', ['ok', 'bad\r\n'])],
    [('X-A', 'ok'), ('X-B', '\r\n')],
    [('X A', 'v')],
    [('X-A:', 'v')],
    [('', 'v')],
    [('X-A\r\nX-B', 'v')],
    [('X\x00', 'v')],
    [('Caf\xe9', 'v')],
    [(None, 'v')],
])
def test_serialize_rejects_injection(headers):
    with pytest.raises(ValueError):
        serialize_response_head(200, None, headers)


@pytest.mark.parametrize('code,reason,version', [
    (99, None, '1.1'), (1000, None, '1.1'), (0, None, '1.1'),
    (-200, None, '1.1'), ('200', None, '1.1'), (True, None, '1.1'),
    (200.0, None, '1.1'), (200, 'OK\r\nX-A: b', '1.1'), (200, 'a\nb', '1.1'),
    (200, 'a\x00', '1.1'), (200, 'OK', '1.1\r\n'), (200, 'OK', '11'),
    (200, 'OK', 'x.y'), (200, b'OK', '1.1'),
])
def test_serialize_rejects_bad_status_line(code, reason, version):
    with pytest.raises(ValueError):
        serialize_response_head(code, reason, [], version=version)


def test_serialize_accepts_int_enum():
    from http import HTTPStatus
    assert serialize_response_head(HTTPStatus.NOT_FOUND, None, []) == \
        b'HTTP/1.1 404 Not Found\r\n\r\n'


# ---------------------------------------------------------------------------
# property tests: nothing but ProtocolError escapes, and it always stops
# ---------------------------------------------------------------------------

def run_to_completion(data: bytes, cuts: list[int], **limits) -> list:
    """Feed ``data`` split at ``cuts`` then EOF; return events or raise
    ProtocolError.  Fails if the parser loops or stalls after EOF."""
    parser = RequestParser(**limits)
    events = []
    start = 0
    for point in sorted({c for c in cuts if 0 < c < len(data)}) + \
            [len(data)]:
        if point == start:
            continue   # b'' would mean EOF
        parser.feed(data[start:point])
        start = point
        events += drive(parser, max_steps=len(data) + 10)
    parser.feed(b'')
    for _ in range(len(data) + 10):
        event = parser.next_event()
        assert event is not NEED_DATA, 'NEED_DATA after EOF'
        if event is CONNECTION_CLOSED:
            return events
        if event is PAUSED:
            parser.start_next_request()
        else:
            events.append(event)
    raise AssertionError('parser did not finish after EOF')


def check_outcome(data: bytes, cuts: list[int], **limits) -> None:
    try:
        events = run_to_completion(data, cuts, **limits)
    except ProtocolError as exc:
        assert exc.status_code in ALLOWED_STATUSES
        assert exc.reason and exc.reason.isascii()
        assert '\r' not in exc.reason and '\n' not in exc.reason
        return
    for event in events:
        if event is CONNECTION_CLOSED:
            continue
        assert isinstance(event, (RequestHead, Data, EndOfMessage))
        if isinstance(event, RequestHead):
            assert event.path.startswith('/') or event.path == '*'
            assert event.version in ('1.0', '1.1')
            assert '?' not in event.path


SMALL_LIMITS = {'max_request_line': 64, 'max_header_line': 64,
                'max_header_bytes': 256, 'max_headers': 8,
                'max_chunk_line': 16}

VALID_REQUESTS = [
    req(),
    req('Content-Length: 5', 'X-A: b', line='POST /p?q=1 HTTP/1.1',
        body=b'hello'),
    chunked(b'5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'),
    b'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    req(line='OPTIONS * HTTP/1.1') + req(line='GET http://h:1/x HTTP/1.1'),
    req(line='CONNECT h:443 HTTP/1.1'),
    (req('Content-Length: 2', line='PUT / HTTP/1.1', body=b'ok')
     + chunked(b'1\nx\n0\n\n')).replace(b'\r\n', b'\n'),
]

INTERESTING = [b'\r', b'\n', b'\r\n', b' ', b'\t', b':', b';', b',', b'\x00',
               b'0', b'5', b'f', b'-', b'"', b'\x7f', b'\xff', b'/', b'?',
               b'Host: a\r\n', b'Content-Length: 3\r\n',
               b'Transfer-Encoding: chunked\r\n', b'\r\n\r\n', b'HTTP/1.1',
               b'*', b'@', b'http://']


@st.composite
def mutated_requests(draw):
    data = bytearray(draw(st.sampled_from(VALID_REQUESTS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(['insert', 'delete', 'replace']))
        pos = draw(st.integers(0, len(data)))
        if op == 'delete' and data:
            end = min(len(data), pos + draw(st.integers(1, 4)))
            del data[pos:end]
        else:
            piece = draw(st.one_of(st.sampled_from(INTERESTING),
                                   st.binary(min_size=1, max_size=3)))
            if op == 'replace':
                data[pos:pos + len(piece)] = piece
            else:
                data[pos:pos] = piece
    return bytes(data)


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
@settings(max_examples=300, **PROPERTY)
def test_arbitrary_bytes_never_crash(data, cuts):
    check_outcome(data, cuts)
    check_outcome(data, cuts, **SMALL_LIMITS)


@given(mutated_requests(), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, **PROPERTY)
def test_mutated_requests_never_crash(data, cuts):
    check_outcome(data, cuts)
    check_outcome(data, cuts, **SMALL_LIMITS)


@given(mutated_requests())
@settings(max_examples=150, **PROPERTY)
def test_mutated_requests_same_outcome_bytewise(data):
    def outcome(cuts):
        try:
            return merge_data(run_to_completion(data, cuts))
        except ProtocolError as exc:
            return exc.status_code
    assert outcome([]) == outcome(list(range(len(data))))


@st.composite
def valid_requests(draw):
    method = draw(st.sampled_from(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']))
    path = '/' + draw(st.text('abcxyz019-._~%/', max_size=20))
    query = draw(st.text('abc=&%+019', max_size=15))
    target = path + ('?' + query if query or draw(st.booleans()) else '')
    names = st.text('abcdefghijklmnopqrstuvwxyz-', min_size=1, max_size=12) \
        .map(lambda s: 'X-' + s)
    values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff,
                                   exclude_characters='\x7f'), max_size=30)
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    body = draw(st.binary(max_size=60))
    use_chunked = draw(st.booleans())
    lines = [f'{method} {target} HTTP/1.1', 'Host: example.com']
    lines += [f'{n}: {v}' for n, v in headers]
    if use_chunked:
        lines.append('Transfer-Encoding: chunked')
        sizes = draw(st.lists(st.integers(1, 20), max_size=5))
        encoded, rest = b'', body
        for size in sizes:
            encoded += encode_chunk(rest[:size])
            rest = rest[size:]
        encoded += encode_chunk(rest) + LAST_CHUNK
    else:
        lines.append(f'Content-Length: {len(body)}')
        encoded = body
    data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + encoded
    expected_headers = [(n, v.strip(' \t')) for n, v in headers]
    return data, method, target, expected_headers, body


@given(valid_requests(), st.lists(st.integers(0, 400), max_size=8))
@settings(max_examples=120, **PROPERTY)
def test_valid_requests_round_trip(request, cuts):
    data, method, target, headers, body = request
    events = merge_data(run_to_completion(data + data, cuts))
    head = events[0]
    assert (head.method, head.target) == (method, target)
    assert head.headers[1:1 + len(headers)] == headers
    expected_body = [Data(body)] if body else []
    assert events == [head] + expected_body + [EndOfMessage()] + \
        [head] + expected_body + [EndOfMessage()]


def test_next_request_ends_a_bodiless_request_in_one_step():
    p = RequestParser()
    p.feed(b'GET /a HTTP/1.1\r\nHost: x\r\n\r\n')
    assert isinstance(p.next_event(), RequestHead)
    assert p.next_request() == 1 and p.at_start  # nothing buffered: NEED_DATA next
    assert p.next_event() is NEED_DATA
    p.feed(b'GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n')
    assert p.next_event().target == '/b'
    assert p.next_request() == 2  # the next request is buffered
    assert p.next_event().target == '/c'
    p.feed(b'')
    assert p.next_request() == 2 and p.next_event() is CONNECTION_CLOSED  # EOF
    p = RequestParser()
    p.feed(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab')
    p.next_event()
    assert p.next_request() == 0  # a body: next_event() and start_next_request()
    assert p.next_event() == Data(b'ab')
