"""Tests for the sans-I/O RFC 6455 codec in microdot.ws_protocol."""

import base64
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from microdot.ws_protocol import (
    CLOSE_ABNORMAL, CLOSE_INVALID_DATA, CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
    Close, ConnectionClosed, HandshakeError, Message, Ping, Pong,
    ProtocolError, WebSocketConnection, accept_key, check_handshake,
    check_handshake_response, client_handshake_headers,
    handshake_response_headers, is_valid_close_code, mask,
)

KEY = b'\x37\xfa\x21\x3d'


def raw_frame(opcode, payload=b'', *, fin=True, rsv=0, masked=True,
              key=KEY, length=None, enc=None):
    """Build a frame by hand, able to break every rule of the protocol."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if masked else 0
    if enc is None:
        enc = 7 if n < 126 else 16 if n < 65536 else 64
    if enc == 7:
        header = bytes((b0, mbit | n))
    elif enc == 16:
        header = struct.pack('!BBH', b0, mbit | 126, n)
    else:
        header = struct.pack('!BBQ', b0, mbit | 127, n)
    if masked:
        # the per-byte reference is too slow for big payloads; mask() is
        # checked against it separately
        masker = reference_mask if len(payload) < 4096 else mask
        return header + key + masker(payload, key)
    return header + payload


def reference_mask(data, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def decode_all(conn, data):
    conn.receive_data(data)
    return list(conn.events())


def expect_error(conn, data, code):
    conn.receive_data(data)
    with pytest.raises(ProtocolError) as info:
        list(conn.events())
    assert info.value.code == code
    return info.value


def headers_getter(headers):
    lower = {}
    for name, value in headers.items():
        lower[name.lower()] = value
    return lambda name: lower.get(name.lower())


# -- handshake ----------------------------------------------------------------

def test_accept_key_rfc_sample():
    # RFC 6455 section 1.3
    assert accept_key('dGhlIHNhbXBsZSBub25jZQ==') == \
        's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


GOOD_HEADERS = {
    'Host': 'server.example.com',
    'Upgrade': 'websocket',
    'Connection': 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
}


def handshake(method='GET', version='HTTP/1.1', subprotocols=(), **changes):
    headers = dict(GOOD_HEADERS)
    for name, value in changes.items():
        name = name.replace('_', '-')
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return check_handshake(method, version, headers_getter(headers),
                           subprotocols)


def test_handshake_ok():
    assert handshake() == ('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', None)
    assert handshake(version='1.1')[0] == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


def test_handshake_token_lists_case_insensitive():
    assert handshake(Upgrade='h2c, WebSocket')[1] is None
    assert handshake(Connection='keep-alive, UPGRADE')[1] is None
    assert handshake(**{'Sec_WebSocket_Key': ' dGhlIHNhbXBsZSBub25jZQ== '})


@pytest.mark.parametrize('kwargs', [
    {'method': 'POST'},
    {'version': 'HTTP/1.0'},
    {'version': 'HTTP/2'},
    {'version': 'junk'},
    {'Upgrade': None},
    {'Upgrade': 'h2c'},
    {'Upgrade': 'websockets'},
    {'Connection': None},
    {'Connection': 'keep-alive'},
    {'Sec_WebSocket_Key': None},
    {'Sec_WebSocket_Key': 'not base64!'},
    {'Sec_WebSocket_Key': base64.b64encode(b'x' * 15).decode()},
    {'Sec_WebSocket_Key': base64.b64encode(b'x' * 17).decode()},
    {'Sec_WebSocket_Key': 'dGhlIHNhbXBsZSBub25jZQ'},   # bad padding
    {'Sec_WebSocket_Key': 'dGhlIHNhbXBsZSBub25jZQ==é'},
])
def test_handshake_400(kwargs):
    with pytest.raises(HandshakeError) as info:
        handshake(**kwargs)
    assert info.value.status_code == 400
    assert info.value.reason
    assert info.value.headers == []


@pytest.mark.parametrize('version', ['8', '12', '13, 8', None])
def test_handshake_426_on_version(version):
    with pytest.raises(HandshakeError) as info:
        handshake(Sec_WebSocket_Version=version)
    assert info.value.status_code == 426
    assert info.value.headers == [('Sec-WebSocket-Version', '13')]


def test_subprotocol_selection_uses_client_preference():
    offered = {'Sec_WebSocket_Protocol': 'chat, superchat'}
    assert handshake(subprotocols=['superchat', 'chat'], **offered)[1] == \
        'chat'
    assert handshake(subprotocols=['superchat'], **offered)[1] == 'superchat'
    assert handshake(subprotocols=['other'], **offered)[1] is None
    assert handshake(subprotocols=[], **offered)[1] is None
    assert handshake(subprotocols=['chat'])[1] is None
    # repeated headers joined by ', ' and odd spacing
    joined = {'Sec_WebSocket_Protocol': ' a ,, b, chat , c'}
    assert handshake(subprotocols=['c', 'chat'], **joined)[1] == 'chat'
    # subprotocol names are case-sensitive
    assert handshake(subprotocols=['Chat'], **offered)[1] is None


def test_handshake_response_headers():
    assert handshake_response_headers('abc') == [
        ('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
        ('Sec-WebSocket-Accept', 'abc')]
    assert handshake_response_headers('abc', 'chat')[-1] == \
        ('Sec-WebSocket-Protocol', 'chat')


def test_client_headers_round_trip():
    headers, key = client_handshake_headers(subprotocols=['chat', 'v2'])
    assert len(base64.b64decode(key)) == 16
    assert dict(headers)['Sec-WebSocket-Protocol'] == 'chat, v2'
    accept, proto = check_handshake('GET', 'HTTP/1.1',
                                    headers_getter(dict(headers)), ['v2'])
    assert proto == 'v2'
    response = dict(handshake_response_headers(accept, proto))
    assert check_handshake_response(101, headers_getter(response), key,
                                    ['chat', 'v2']) == 'v2'
    headers, key2 = client_handshake_headers('dGhlIHNhbXBsZSBub25jZQ==')
    assert key2 == 'dGhlIHNhbXBsZSBub25jZQ=='
    assert 'Sec-WebSocket-Protocol' not in dict(headers)
    _, key3 = client_handshake_headers()
    assert key3 != key


def test_check_handshake_response_errors():
    key = 'dGhlIHNhbXBsZSBub25jZQ=='
    good = dict(handshake_response_headers(accept_key(key)))
    assert check_handshake_response(101, headers_getter(good), key) is None
    with pytest.raises(HandshakeError) as info:
        check_handshake_response(403, headers_getter(good), key)
    assert info.value.status_code == 403
    for change in [{'Upgrade': 'h2c'}, {'Connection': 'close'},
                   {'Sec-WebSocket-Accept': 'wrong'},
                   {'Sec-WebSocket-Protocol': 'chat'}]:
        with pytest.raises(HandshakeError):
            check_handshake_response(101, headers_getter({**good, **change}),
                                     key)


# -- masking ------------------------------------------------------------------

@pytest.mark.parametrize('n', [0, 1, 2, 3, 4, 5, 7, 8, 125, 16383, 16384,
                               16385, 16387, 65536 + 3, 100_001])
def test_mask_matches_reference(n):
    data = bytes(range(256)) * (n // 256 + 1)
    data = data[:n]
    assert mask(data, KEY) == reference_mask(data, KEY)
    assert mask(mask(data, KEY), KEY) == data
    assert mask(bytearray(data), KEY) == reference_mask(data, KEY)
    assert mask(memoryview(data), KEY) == reference_mask(data, KEY)


def test_mask_key_length():
    with pytest.raises(ValueError):
        mask(b'abc', b'123')


def test_mask_is_fast():
    data = bytes(1 << 20)
    best = float('inf')
    for _ in range(5):
        start = time.perf_counter()
        mask(data, KEY)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05   # typically ~3 ms; generous bound for loaded CI


# -- round trips --------------------------------------------------------------

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


def make_payload(n, text):
    if text:
        # mostly ASCII, with a multi-byte character where it fits
        return ('a' * (n - 3) + '€') if n >= 3 else 'a' * n
    return bytes(i & 0xFF for i in range(n)) if n < 1000 else \
        (bytes(range(256)) * (n // 256 + 1))[:n]


def header_size(n):
    return 2 if n < 126 else 4 if n < 65536 else 10


@pytest.mark.parametrize('n', SIZES)
@pytest.mark.parametrize('text', [True, False])
@pytest.mark.parametrize('client_sends', [True, False])
def test_round_trip(n, text, client_sends):
    sender = WebSocketConnection(is_client=client_sends)
    receiver = WebSocketConnection(is_client=not client_sends)
    payload = make_payload(n, text)
    frame = sender.send(payload)
    nbytes = n
    assert len(frame) == header_size(nbytes) + nbytes + \
        (4 if client_sends else 0)
    assert frame[0] == 0x80 | (OP_TEXT if text else OP_BINARY)
    assert bool(frame[1] & 0x80) == client_sends
    assert decode_all(receiver, frame) == [Message(payload)]
    # the same frame fed in a few uneven pieces
    receiver = WebSocketConnection(is_client=not client_sends)
    events = []
    for cut in range(0, len(frame), 9973):
        receiver.receive_data(frame[cut:cut + 9973])
        events.extend(receiver.events())
    assert events == [Message(payload)]


def test_opcode_override():
    server = WebSocketConnection()
    client = WebSocketConnection(is_client=True)
    assert decode_all(server, client.send(b'hi', opcode=OP_TEXT)) == \
        [Message('hi')]
    assert decode_all(server, client.send('hi', opcode=OP_BINARY)) == \
        [Message(b'hi')]
    assert decode_all(server, client.send(bytearray(b'x'))) == \
        [Message(b'x')]


@pytest.mark.parametrize('client_sends', [True, False])
def test_byte_by_byte(client_sends):
    sender = WebSocketConnection(is_client=client_sends)
    receiver = WebSocketConnection(is_client=not client_sends)
    stream = (sender.send('héllo wörld €') + sender.ping(b'p')
              + sender.send(b'\x00\xff' * 100) + sender.send('x' * 70000)
              + sender.send('frag ', fin=False) + sender.pong(b'q')
              + sender.send('mént', opcode=OP_CONT)
              + sender.close(1000, 'bye'))
    events = []
    for i in range(len(stream)):
        receiver.receive_data(stream[i:i + 1])
        events.extend(receiver.events())
    assert events == [Message('héllo wörld €'), Ping(b'p'),
                      Message(b'\x00\xff' * 100), Message('x' * 70000),
                      Pong(b'q'), Message('frag mént'), Close(1000, 'bye')]


def test_many_frames_in_one_chunk():
    client = WebSocketConnection(is_client=True)
    server = WebSocketConnection()
    stream = b''.join(client.send(f'msg {i}') for i in range(1000))
    assert decode_all(server, stream) == [Message(f'msg {i}')
                                          for i in range(1000)]
    assert server._buf == bytearray()


# -- fragmentation ------------------------------------------------------------

def test_fragmentation_with_interleaved_control_frames():
    client = WebSocketConnection(is_client=True)
    server = WebSocketConnection()
    assert decode_all(server, client.send('Hel', fin=False)) == []
    # control frames between fragments are yielded immediately
    assert decode_all(server, client.ping(b'1')) == [Ping(b'1')]
    assert decode_all(server, client.send('lo ', opcode=OP_CONT,
                                          fin=False)) == []
    assert decode_all(server, client.pong(b'2')) == [Pong(b'2')]
    assert decode_all(server, client.send(b'', opcode=OP_CONT,
                                          fin=False)) == []
    assert decode_all(server, client.send('wörld', opcode=OP_CONT)) == \
        [Message('Hello wörld')]
    # binary fragments, all at once
    stream = (client.send(b'ab', fin=False) + client.ping()
              + client.send(b'cd', opcode=OP_CONT))
    assert decode_all(server, stream) == [Ping(b''), Message(b'abcd')]


def test_fragment_splitting_a_utf8_sequence():
    client = WebSocketConnection(is_client=True)
    server = WebSocketConnection()
    euro = '€'.encode()
    stream = (client.send(euro[:1], opcode=OP_TEXT, fin=False)
              + client.send(euro[1:2], opcode=OP_CONT, fin=False)
              + client.send(euro[2:], opcode=OP_CONT))
    assert decode_all(server, stream) == [Message('€')]


def test_sending_fragment_misuse():
    conn = WebSocketConnection()
    with pytest.raises(ValueError):
        conn.send(b'x', opcode=OP_CONT)
    conn.send('a', fin=False)
    with pytest.raises(ValueError):
        conn.send('b')
    conn.ping(b'allowed in between')
    conn.send('c', opcode=OP_CONT)
    with pytest.raises(ValueError):
        conn.send('d', opcode=OP_CONT)
    with pytest.raises(ValueError):
        conn.send(b'x' * 126, opcode=OP_PING)
    with pytest.raises(ValueError):
        conn.send(b'x', opcode=OP_PING, fin=False)
    with pytest.raises(ValueError):
        conn.send(b'x', opcode=OP_CLOSE)
    with pytest.raises(ValueError):
        conn.send(b'x', opcode=0x3)
    with pytest.raises(ValueError):
        conn.ping(b'x' * 126)
    assert conn.send(b'', opcode=OP_PONG) == b'\x8a\x00'


def test_server_frames_unmasked_client_frames_masked():
    server = WebSocketConnection()
    assert server.send('abc') == b'\x81\x03abc'
    assert server.send(b'') == b'\x82\x00'
    assert server.send('a', fin=False) == b'\x01\x01a'
    assert server.send('b', opcode=OP_CONT) == b'\x80\x01b'
    assert server.ping(b'p') == b'\x89\x01p'
    assert server.pong(b'p') == b'\x8a\x01p'
    assert server.close(1000, 'x') == b'\x88\x03\x03\xe8x'
    client = WebSocketConnection(is_client=True)
    frame = client.send('abc')
    assert frame[:2] == b'\x81\x83'
    assert mask(frame[6:], frame[2:6]) == b'abc'


# -- violations ---------------------------------------------------------------

def test_unmasked_client_frame():
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'hi',
                                                  masked=False),
                 CLOSE_PROTOCOL_ERROR)


def test_masked_server_frame():
    expect_error(WebSocketConnection(is_client=True),
                 raw_frame(OP_TEXT, b'hi'), CLOSE_PROTOCOL_ERROR)


@pytest.mark.parametrize('rsv', [1, 2, 4, 7])
def test_reserved_bits(rsv):
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'x', rsv=rsv),
                 CLOSE_PROTOCOL_ERROR)


@pytest.mark.parametrize('opcode', [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes(opcode):
    expect_error(WebSocketConnection(), raw_frame(opcode, b'x'),
                 CLOSE_PROTOCOL_ERROR)


@pytest.mark.parametrize('opcode', [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frame_too_long(opcode):
    payload = b'\x03\xe8' + b'x' * 124
    # fails from the first two bytes, before the length or payload arrive
    expect_error(WebSocketConnection(), raw_frame(opcode, payload)[:2],
                 CLOSE_PROTOCOL_ERROR)
    expect_error(WebSocketConnection(), raw_frame(opcode, b'x' * 5, enc=16),
                 CLOSE_PROTOCOL_ERROR)


@pytest.mark.parametrize('opcode', [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame(opcode):
    expect_error(WebSocketConnection(), raw_frame(opcode, b'', fin=False),
                 CLOSE_PROTOCOL_ERROR)


def test_control_frame_of_125_bytes_ok():
    assert decode_all(WebSocketConnection(), raw_frame(OP_PING, b'x' * 125)) \
        == [Ping(b'x' * 125)]


def test_continuation_without_message():
    expect_error(WebSocketConnection(), raw_frame(OP_CONT, b'x'),
                 CLOSE_PROTOCOL_ERROR)
    conn = WebSocketConnection()
    decode_all(conn, raw_frame(OP_TEXT, b'a'))
    expect_error(conn, raw_frame(OP_CONT, b'x'), CLOSE_PROTOCOL_ERROR)


@pytest.mark.parametrize('opcode', [OP_TEXT, OP_BINARY])
def test_new_message_during_fragmented_message(opcode):
    conn = WebSocketConnection()
    assert decode_all(conn, raw_frame(OP_BINARY, b'a', fin=False)) == []
    expect_error(conn, raw_frame(opcode, b'b'), CLOSE_PROTOCOL_ERROR)


def test_64bit_length_high_bit():
    frame = struct.pack('!BBQ', 0x82, 0xFF, 1 << 63)
    expect_error(WebSocketConnection(max_message_size=None), frame,
                 CLOSE_PROTOCOL_ERROR)


def test_non_minimal_lengths_refused():
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'x' * 5, enc=16),
                 CLOSE_PROTOCOL_ERROR)
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'x' * 125,
                                                  enc=16),
                 CLOSE_PROTOCOL_ERROR)
    expect_error(WebSocketConnection(),
                 raw_frame(OP_TEXT, b'x' * 65535, enc=64),
                 CLOSE_PROTOCOL_ERROR)
    # minimal encodings at the boundaries are fine
    conn = WebSocketConnection()
    assert decode_all(conn, raw_frame(OP_BINARY, b'x' * 126, enc=16)) == \
        [Message(b'x' * 126)]
    assert decode_all(conn, raw_frame(OP_BINARY, b'x' * 65536, enc=64)) == \
        [Message(b'x' * 65536)]


def test_invalid_utf8_single_frame():
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'\xff'),
                 CLOSE_INVALID_DATA)
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'ab\xe2\x82'),
                 CLOSE_INVALID_DATA)      # truncated at the end
    expect_error(WebSocketConnection(), raw_frame(OP_TEXT, b'\xed\xa0\x80'),
                 CLOSE_INVALID_DATA)      # surrogate


def test_utf8_fail_fast_in_first_fragment():
    # Autobahn 6.4.1: the invalid fragment fails before the rest arrives
    conn = WebSocketConnection()
    first = 'κόσμε'.encode() + b'\xf4\x90\x80\x80'
    expect_error(conn, raw_frame(OP_TEXT, first, fin=False),
                 CLOSE_INVALID_DATA)


def test_utf8_fail_fast_inside_a_partial_frame():
    # Autobahn 6.4.3/6.4.4: a single frame arriving in chunks
    conn = WebSocketConnection()
    payload = 'κόσμε'.encode() + b'\xf4\x90\x80\x80' + b'edited' * 100
    frame = raw_frame(OP_TEXT, payload)
    header = 8   # 2 + 16-bit length + mask
    conn.receive_data(frame[:header + len('κόσμε'.encode()) + 1])
    assert list(conn.events()) == []          # \xf4 alone may still be valid
    expect_error(conn, frame[header + 11:header + 12], CLOSE_INVALID_DATA)


@pytest.mark.parametrize('bad', [b'\xed\xa0', b'\xed\xbf'])
def test_utf8_surrogate_prefix_fails_fast(bad):
    conn = WebSocketConnection()
    expect_error(conn, raw_frame(OP_TEXT, b'ok' + bad, fin=False),
                 CLOSE_INVALID_DATA)


@pytest.mark.parametrize('prefix', [b'\xe2', b'\xe2\x82', b'\xf0\x9f',
                                    b'\xf0\x9f\x98', b'\xed\x9f'])
def test_truncated_valid_prefix_does_not_fail_early(prefix):
    full = {b'\xe2': '€', b'\xe2\x82': '€', b'\xf0\x9f': '😀',
            b'\xf0\x9f\x98': '😀', b'\xed\x9f': '\ud7ff'}[prefix]
    encoded = full.encode()
    conn = WebSocketConnection()
    assert decode_all(conn, raw_frame(OP_TEXT, b'a' + prefix,
                                      fin=False)) == []
    assert decode_all(conn, raw_frame(OP_CONT, encoded[len(prefix):])) == \
        [Message('a' + full)]
    # same within a single frame arriving in pieces
    conn = WebSocketConnection()
    frame = raw_frame(OP_TEXT, b'a' + encoded)
    assert decode_all(conn, frame[:6 + 1 + len(prefix)]) == []
    assert decode_all(conn, frame[6 + 1 + len(prefix):]) == \
        [Message('a' + full)]


def test_message_size_limit_from_header():
    conn = WebSocketConnection(max_message_size=100)
    assert decode_all(conn, raw_frame(OP_BINARY, b'x' * 100)) == \
        [Message(b'x' * 100)]
    # refused from the header alone: no payload fed at all
    header = raw_frame(OP_BINARY, b'x' * 101)[:8]
    expect_error(conn, header, CLOSE_TOO_BIG)
    big = struct.pack('!BBQ', 0x82, 0xFF, 1 << 40) + KEY
    expect_error(WebSocketConnection(), big, CLOSE_TOO_BIG)


def test_message_size_limit_over_fragments():
    conn = WebSocketConnection(max_message_size=100)
    assert decode_all(conn, raw_frame(OP_TEXT, b'x' * 60, fin=False)) == []
    assert decode_all(conn, raw_frame(OP_PING, b'x' * 100)) == \
        [Ping(b'x' * 100)]           # control frames do not count
    assert decode_all(conn, raw_frame(OP_CONT, b'x' * 40, fin=False)) == []
    header = raw_frame(OP_CONT, b'x')[:6]
    expect_error(conn, header, CLOSE_TOO_BIG)
    # the counter restarts with each message
    conn = WebSocketConnection(max_message_size=100)
    for _ in range(3):
        assert decode_all(conn, raw_frame(OP_TEXT, b'x' * 60, fin=False)
                          + raw_frame(OP_CONT, b'y' * 40)) == \
            [Message('x' * 60 + 'y' * 40)]


def test_no_message_size_limit():
    conn = WebSocketConnection(max_message_size=None)
    data = b'x' * ((1 << 20) + 1)
    assert decode_all(conn, raw_frame(OP_BINARY, data)) == [Message(data)]
    with pytest.raises(ProtocolError) as info:
        decode_all(WebSocketConnection(), raw_frame(OP_BINARY, data))
    assert info.value.code == CLOSE_TOO_BIG


def test_frame_size_limit():
    conn = WebSocketConnection(max_frame_size=10)
    stream = raw_frame(OP_TEXT, b'x' * 10, fin=False) + \
        raw_frame(OP_CONT, b'y' * 10)
    assert decode_all(conn, stream) == [Message('x' * 10 + 'y' * 10)]
    expect_error(conn, raw_frame(OP_TEXT, b'x' * 11)[:6], CLOSE_TOO_BIG)


# -- close frames -------------------------------------------------------------

def close_frame(code=None, reason=b''):
    body = b'' if code is None else struct.pack('!H', code) + reason
    return raw_frame(OP_CLOSE, body)


def test_close_without_body():
    conn = WebSocketConnection()
    assert decode_all(conn, close_frame()) == [Close(None, '')]
    assert conn.close_received == Close(None, '')
    # the answer echoes "no status": an empty close body
    assert conn.answer_close() == b'\x88\x00'
    assert conn.state == 'closed'


def test_close_with_code_and_reason():
    conn = WebSocketConnection()
    assert decode_all(conn, close_frame(1001, 'adiós'.encode())) == \
        [Close(1001, 'adiós')]


def test_close_one_byte_payload():
    expect_error(WebSocketConnection(), raw_frame(OP_CLOSE, b'\x03'),
                 CLOSE_PROTOCOL_ERROR)


def test_close_invalid_utf8_reason():
    expect_error(WebSocketConnection(), close_frame(1000, b'\xff\xfe'),
                 CLOSE_INVALID_DATA)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
               1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                 5000, 65535]


@pytest.mark.parametrize('code', VALID_CODES)
def test_valid_close_codes(code):
    assert is_valid_close_code(code)
    assert decode_all(WebSocketConnection(), close_frame(code)) == \
        [Close(code, '')]


@pytest.mark.parametrize('code', INVALID_CODES)
def test_invalid_close_codes(code):
    assert not is_valid_close_code(code)
    expect_error(WebSocketConnection(), close_frame(code),
                 CLOSE_PROTOCOL_ERROR)
    with pytest.raises(ValueError):
        WebSocketConnection().close(code)


def test_frames_after_close_are_ignored():
    conn = WebSocketConnection()
    stream = close_frame(1000) + raw_frame(OP_TEXT, b'late') + b'\xff\xff'
    assert decode_all(conn, stream) == [Close(1000, '')]
    assert decode_all(conn, raw_frame(OP_TEXT, b'later')) == []
    conn.receive_data(b'')
    assert list(conn.events()) == []


def test_close_during_fragmented_message():
    conn = WebSocketConnection()
    stream = raw_frame(OP_TEXT, b'part', fin=False) + close_frame(1000)
    assert decode_all(conn, stream) == [Close(1000, '')]


def test_close_handshake_server_initiated():
    server = WebSocketConnection()
    client = WebSocketConnection(is_client=True)
    assert server.state == client.state == 'open'
    frame = server.close(1001, 'shutting down')
    assert server.state == 'closing'
    assert server.close() == b''                  # idempotent
    with pytest.raises(ConnectionClosed):
        server.send('too late')
    server.ping(b'still allowed while closing')
    # the peer may still send data before its close
    assert decode_all(server, client.send('in flight')) == \
        [Message('in flight')]
    assert decode_all(client, frame) == [Close(1001, 'shutting down')]
    assert client.state == 'open'
    answer = client.answer_close()
    assert client.state == 'closed'
    assert client.answer_close() == b''
    assert decode_all(server, answer) == [Close(1001, '')]
    assert server.state == 'closed'
    assert server.answer_close() == b''
    with pytest.raises(ConnectionClosed):
        server.ping()


def test_close_handshake_client_initiated():
    server = WebSocketConnection()
    client = WebSocketConnection(is_client=True)
    assert decode_all(server, client.close(4000)) == [Close(4000, '')]
    echo = server.answer_close()
    assert echo == b'\x88\x02\x0f\xa0'
    assert server.state == 'closed'
    assert decode_all(client, echo) == [Close(4000, '')]
    assert client.state == 'closed'


def test_close_sending_variants():
    conn = WebSocketConnection()
    assert conn.close(None) == b'\x88\x00'
    conn = WebSocketConnection()
    with pytest.raises(ValueError):
        conn.close(None, 'reason without code')
    frame = conn.close(1000, 'é' * 100)   # 200 bytes: cut at a character
    assert len(frame) == 2 + 2 + 122
    assert decode_all(WebSocketConnection(is_client=True), frame)[0].reason \
        == 'é' * 61


def test_eof_without_close():
    conn = WebSocketConnection()
    conn.receive_data(raw_frame(OP_TEXT, b'hello')[:5])
    conn.receive_data(b'')
    assert conn.state == 'closed'
    assert list(conn.events()) == [Close(CLOSE_ABNORMAL, '')]
    assert list(conn.events()) == []
    assert conn.answer_close() == b''
    assert conn.close() == b''
    with pytest.raises(ConnectionClosed):
        conn.send('x')


def test_eof_after_complete_frames():
    conn = WebSocketConnection()
    conn.receive_data(raw_frame(OP_TEXT, b'hello'))
    conn.receive_data(b'')
    assert list(conn.events()) == [Message('hello'),
                                   Close(CLOSE_ABNORMAL, '')]


def test_protocol_error_is_sticky_and_close_still_works():
    conn = WebSocketConnection()
    err = expect_error(conn, raw_frame(OP_TEXT, b'x', masked=False),
                       CLOSE_PROTOCOL_ERROR)
    assert err.reason
    with pytest.raises(ProtocolError):
        list(conn.events())
    conn.receive_data(raw_frame(OP_TEXT, b'ok'))
    with pytest.raises(ProtocolError):
        list(conn.events())
    frame = conn.close(err.code, err.reason)
    assert frame[:4] == b'\x88' + bytes([2 + len(err.reason.encode())]) + \
        b'\x03\xea'
    assert conn.state == 'closing'


def test_events_generator_can_be_abandoned():
    client = WebSocketConnection(is_client=True)
    server = WebSocketConnection()
    server.receive_data(client.send('a') + client.send('b') + client.send('c'))
    assert next(server.events()) == Message('a')
    server.receive_data(client.send('d'))
    assert list(server.events()) == [Message('b'), Message('c'), Message('d')]


def test_event_types():
    assert Message('x').data == 'x'
    assert Ping().data == b'' and Pong().data == b''
    assert Close().code is None and Close().reason == ''
    assert OP_CONT == 0 and OP_PONG == 0xA
    assert CLOSE_NORMAL == 1000


# -- property tests -----------------------------------------------------------

@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=64), max_size=12), st.booleans(),
       st.sampled_from([None, 64, 1 << 20]))
def test_random_bytes_never_crash(chunks, eof, limit):
    conn = WebSocketConnection(max_message_size=limit)
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            for event in conn.events():
                assert isinstance(event, (Message, Ping, Pong, Close))
        if eof:
            conn.receive_data(b'')
            list(conn.events())
    except ProtocolError as exc:
        assert exc.code in (1002, 1007, 1009)


def _frame_stream():
    """Random valid frames starting with a plausible header, as raw bytes."""
    frame = st.builds(
        lambda op, payload, fin, key: raw_frame(op, payload, fin=fin,
                                                key=key),
        st.sampled_from([OP_CONT, OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE]),
        st.binary(max_size=200), st.booleans(), st.binary(min_size=4,
                                                         max_size=4))
    return st.lists(frame, max_size=6).map(b''.join)


@settings(max_examples=200, deadline=None)
@given(_frame_stream(), st.data())
def test_structured_garbage_never_crashes(stream, data):
    conn = WebSocketConnection()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)),
                                     max_size=5)))
    try:
        prev = 0
        for cut in cuts + [len(stream)]:
            conn.receive_data(stream[prev:cut])
            prev = cut
            list(conn.events())
    except ProtocolError as exc:
        assert exc.code in (1002, 1007, 1009)


message_strategy = st.one_of(st.text(max_size=300),
                             st.binary(max_size=300))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(message_strategy,
                          st.lists(st.integers(0, 300), max_size=3),
                          st.booleans()),
                min_size=1, max_size=6),
       st.booleans(), st.data())
def test_random_messages_round_trip(messages, client_sends, data):
    sender = WebSocketConnection(is_client=client_sends)
    receiver = WebSocketConnection(is_client=not client_sends)
    stream = b''
    expected = []
    for payload, fragment_cuts, with_ping in messages:
        raw = payload.encode() if isinstance(payload, str) else payload
        opcode = OP_TEXT if isinstance(payload, str) else OP_BINARY
        # fragment boundaries may split UTF-8 sequences and may be empty
        cuts = sorted({c for c in fragment_cuts if c < len(raw)})
        pieces = [raw[a:b] for a, b in zip([0] + cuts, cuts + [len(raw)])]
        for i, piece in enumerate(pieces):
            stream += sender.send(piece, opcode=opcode if i == 0 else OP_CONT,
                                  fin=i == len(pieces) - 1)
            if with_ping and i == 0:
                stream += sender.ping(b'ping')
        if with_ping and len(pieces) > 1:
            expected.append(Ping(b'ping'))    # between fragments
        expected.append(Message(payload))
        if with_ping and len(pieces) == 1:
            expected.append(Ping(b'ping'))
    splits = sorted(data.draw(st.lists(st.integers(0, len(stream)),
                                       max_size=8)))
    events = []
    prev = 0
    for cut in splits + [len(stream)]:
        if cut > prev:                  # b'' would mean EOF
            receiver.receive_data(stream[prev:cut])
        prev = cut
        events.extend(receiver.events())
    assert events == expected
