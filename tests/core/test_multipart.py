"""multipart/form-data: the streaming parser, FormDataIter, FileUpload, with_form_data."""
import asyncio
import hashlib
import io
import os
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from microdot import Microdot, MultiDict
from microdot.multipart import FileUpload, FormDataIter, with_form_data
from microdot.multipart_parser import FINISHED, NEED_DATA, PART_END, MultipartError, \
    MultipartParser, PartData, PartHeaders, parse_options_header
from microdot.test_client import TestClient

BOUNDARY = 'test-boundary-1234'


def run(coro):
    return asyncio.run(coro)


def encode(parts, boundary=BOUNDARY, preamble=b'', epilogue=b''):
    """A multipart body: parts are (name, str) fields or (name, (filename, bytes[, type]))."""
    out = [preamble]
    for name, value in parts:
        out.append(b'--' + boundary.encode() + b'\r\n')
        if isinstance(value, tuple):
            filename, data = value[0], value[1]
            ctype = value[2] if len(value) > 2 else 'application/octet-stream'
            out.append(('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                        'Content-Type: %s\r\n\r\n' % (name, filename, ctype)).encode())
            out.append(data)
        else:
            out.append(('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode())
            out.append(value.encode())
        out.append(b'\r\n')
    out.append(b'--' + boundary.encode() + b'--\r\n' + epilogue)
    return b''.join(out)


def ctype(boundary=BOUNDARY):
    return 'multipart/form-data; boundary=' + boundary


def post(app, body, content_type=None, path='/'):
    headers = {'Content-Type': content_type or ctype()}
    return run(TestClient(app).post(path, headers=headers, body=body))


def form_app(max_content_length=None):
    app = Microdot()
    if max_content_length:
        app.max_content_length = max_content_length

    @app.post('/')
    @with_form_data
    async def upload(request):
        files = {} if request.files is not None else None
        for name, uploads in (request.files or MultiDict()).lists():
            files[name] = []
            for f in uploads:
                data = await f.read()
                files[name].append({'filename': f.filename, 'content_type': f.content_type,
                                    'size': len(data), 'size_attr': f.size,
                                    'sha1': hashlib.sha1(data).hexdigest(),
                                    'text': data.decode('latin-1') if len(data) < 200
                                    else None})
        return {'form': request.form.lists() if request.form is not None else None,
                'files': files}

    return app


# -- with_form_data --------------------------------------------------------------------

def test_fields_and_files():
    app = form_app()
    body = encode([('name', 'Alice'), ('greeting', 'héllo wörld'),
                   ('doc', ('notes.txt', b'line1\r\nline2\r\n', 'text/plain'))])
    res = post(app, body)
    assert res.status_code == 200
    assert res.json['form'] == [['name', ['Alice']], ['greeting', ['héllo wörld']]]
    doc = res.json['files']['doc'][0]
    assert doc['filename'] == 'notes.txt'
    assert doc['content_type'] == 'text/plain'
    assert doc['text'] == 'line1\r\nline2\r\n'
    assert doc['size_attr'] == len(b'line1\r\nline2\r\n')


def test_repeated_fields_and_files_are_kept():
    app = Microdot()

    @app.post('/')
    @with_form_data
    async def upload(request):
        return {'tags': request.form.getlist('tag'), 'first': request.form['tag'],
                'files': [(f.filename, (await f.read()).decode())
                          for f in request.files.getlist('file')],
                'first_file': request.files['file'].filename}

    body = encode([('tag', 'a'), ('tag', 'b'), ('file', ('one.txt', b'1')),
                   ('tag', 'c'), ('file', ('two.txt', b'2'))])
    res = post(app, body)
    # every value is kept; single access gives the last one, as Microdot's dict does
    assert res.json == {'tags': ['a', 'b', 'c'], 'first': 'c',
                        'files': [['one.txt', '1'], ['two.txt', '2']],
                        'first_file': 'two.txt'}


@pytest.mark.parametrize('boundary,header', [
    ('a b', 'multipart/form-data; boundary="a b"'),
    ('simple', 'multipart/form-data; boundary="simple"'),
    ('x=y:z', 'multipart/form-data; boundary="x=y:z"'),
    ('semi;colon', 'multipart/form-data; boundary="semi;colon"'),
    ('abc', 'Multipart/Form-Data; charset=utf-8; BOUNDARY=abc'),
    ('abc', 'multipart/form-data;boundary=abc'),
    ("'()+_,-./:=?", "multipart/form-data; boundary=\"'()+_,-./:=?\""),
])
def test_boundary_forms(boundary, header):
    app = form_app()
    body = encode([('a', '1'), ('f', ('f.bin', b'\x00\x01'))], boundary=boundary)
    res = post(app, body, header)
    assert res.status_code == 200
    assert res.json['form'] == [['a', ['1']]]
    assert res.json['files']['f'][0]['size'] == 2


def test_preamble_epilogue_and_padding():
    app = form_app()
    body = (b'This is the preamble.\r\nIt is ignored.\r\n'
            b'--' + BOUNDARY.encode() + b'  \t\r\n'
            b'Content-Disposition: form-data; name="a"\r\n\r\nvalue\r\n'
            b'--' + BOUNDARY.encode() + b'--  \r\nThis is the epilogue. --' +
            BOUNDARY.encode() + b'\r\ngarbage')
    res = post(app, body)
    assert res.status_code == 200
    assert res.json['form'] == [['a', ['value']]]


def test_content_that_looks_like_boundaries():
    app = form_app()
    tricky = (b'\r\n--' + BOUNDARY[:-1].encode() + b'\r\n-- ' + BOUNDARY.encode() +
              b'\r\r\n\n--' + b'\r' * 5 + b'\r\n-')
    body = encode([('f', ('t.bin', tricky)), ('g', ('u.bin', b'\r')),
                   ('h', ('v.bin', b'\r\n')), ('empty', ('e.bin', b''))])
    res = post(app, body)
    files = res.json['files']
    assert files['f'][0]['sha1'] == hashlib.sha1(tricky).hexdigest()
    assert files['g'][0]['text'] == '\r'
    assert files['h'][0]['text'] == '\r\n'
    assert files['empty'][0]['size'] == 0


def test_filename_variants():
    app = form_app()
    body = (b'--B\r\nContent-Disposition: form-data; name="a"; filename="plain.txt"; '
            b"filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\nx\r\n"
            b'--B\r\ncontent-disposition: form-data; name="b"; filename=""\r\n\r\n\r\n'
            b'--B\r\nContent-Disposition: form-data; name="c"; filename="na\\"me.txt"\r\n'
            b'\r\ny\r\n'
            b'--B\r\nContent-Disposition: form-data; name="d"; filename="C:\\dir\\f.txt"\r\n'
            b'\r\nz\r\n'
            b'--B\r\nContent-Disposition: form-data; name="e"; filename="caf\xc3\xa9.txt"\r\n'
            b'\r\nw\r\n'
            b'--B--\r\n')
    res = post(app, body, ctype('B'))
    files = res.json['files']
    # RFC 7578 4.2: filename*= must not be sent; as Microdot, filename= is the name
    assert files['a'][0]['filename'] == 'plain.txt'
    assert files['b'][0]['filename'] == '' and files['b'][0]['size'] == 0
    assert files['c'][0]['filename'] == 'na"me.txt'
    assert files['d'][0]['filename'] == 'C:\\dir\\f.txt'
    assert files['e'][0]['filename'] == 'café.txt'
    assert files['a'][0]['content_type'] is None


def test_filename_star_alone_is_a_field_not_a_file():
    # as Microdot: a part named only with filename*= has no filename, so it is a field
    app = form_app()
    body = (b'--B\r\nContent-Disposition: form-data; name="a"; '
            b"filename*=UTF-8''x.txt\r\n\r\nvalue\r\n--B--\r\n")
    res = post(app, body, ctype('B'))
    assert res.json['files'] == {}  # no file part (an empty dict, as in Microdot)
    assert res.json['form'] == [['a', ['value']]]


def test_field_charset():
    app = form_app()
    body = (b'--B\r\nContent-Disposition: form-data; name="a"\r\n'
            b'Content-Type: text/plain; charset=latin-1\r\n\r\ncaf\xe9\r\n'
            b'--B\r\nContent-Disposition: form-data; name="b"\r\n\r\nbad \xff\r\n--B--\r\n')
    res = post(app, body, ctype('B'))
    assert res.json['form'] == [['a', ['café']], ['b', ['bad \ufffd']]]


def test_not_multipart_still_calls_handler():
    app = form_app()
    res = run(TestClient(app).post('/', headers={
        'Content-Type': 'application/x-www-form-urlencoded'}, body='a=1&a=2'))
    # as in Microdot, request.files stays None when the body is not multipart
    assert res.json == {'form': [['a', ['1', '2']]], 'files': None}
    res = run(TestClient(app).post('/', body={'a': 1}))
    assert res.json == {'form': None, 'files': None}


def test_sync_handler():
    app = Microdot()

    @app.post('/')
    @with_form_data
    def upload(request):
        return {'a': request.form['a'], 'files': list(request.files)}

    res = post(app, encode([('a', '1'), ('f', ('x', b'y'))]))
    assert res.json == {'a': '1', 'files': ['f']}


def test_empty_multipart_body_with_no_parts():
    app = form_app()
    res = post(app, b'--' + BOUNDARY.encode() + b'--\r\n')
    assert res.status_code == 200
    assert res.json == {'form': None, 'files': None}  # as in Microdot: nothing parsed


# -- malformed bodies and limits -------------------------------------------------------

MALFORMED = [
    b'',                                                       # no delimiter at all
    b'no boundary here',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nx',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'
    b'--' + BOUNDARY.encode(),                                 # no close delimiter
    b'--' + BOUNDARY.encode() + b'X\r\n\r\nx\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nno colon\r\n\r\nx\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nBad Name: x\r\n\r\nx\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\n\r\nx\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: attachment; name="a"\r\n\r\n'
    b'x\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data\r\n\r\n'
    b'x\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a\r\n\r\n'
    b'x\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\n Content-Disposition: form-data; name="a"\r\n\r\n'
    b'x\r\n--' + BOUNDARY.encode() + b'--',
    b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a"',
]


@pytest.mark.parametrize('body', MALFORMED)
def test_malformed_bodies_are_400(body):
    app = form_app()
    assert post(app, body).status_code == 400


@pytest.mark.parametrize('content_type', [
    'multipart/form-data',
    'multipart/form-data; boundary=',
    'multipart/form-data; boundary=""',
    'multipart/form-data; boundary="unterminated',
    'multipart/form-data; boundary=' + 'x' * 300,
    'multipart/form-data; boundary="bad\x7f"',
])
def test_bad_content_types_are_400(content_type):
    app = form_app()
    assert post(app, encode([('a', '1')]), content_type).status_code == 400


def test_part_header_limit(monkeypatch):
    app = form_app()
    monkeypatch.setattr(FormDataIter, 'max_part_header_size', 200)
    body = (b'--B\r\nContent-Disposition: form-data; name="a"\r\nX-Long: ' + b'y' * 300 +
            b'\r\n\r\nx\r\n--B--\r\n')
    assert post(app, body, ctype('B')).status_code == 400
    monkeypatch.setattr(FormDataIter, 'max_part_header_size', 1000)
    assert post(app, body, ctype('B')).status_code == 200


def test_part_count_limit(monkeypatch):
    app = form_app()
    monkeypatch.setattr(FormDataIter, 'max_parts', 3)
    assert post(app, encode([('a', '1')] * 3)).status_code == 200
    assert post(app, encode([('a', '1')] * 4)).status_code == 400


def test_part_header_count_limit(monkeypatch):
    app = form_app()
    monkeypatch.setattr(FormDataIter, 'max_part_headers', 2)
    body = (b'--B\r\nContent-Disposition: form-data; name="a"\r\nX-1: 1\r\nX-2: 2\r\n\r\n'
            b'x\r\n--B--\r\n')
    assert post(app, body, ctype('B')).status_code == 400


def test_field_size_limits(monkeypatch):
    app = form_app(max_content_length=10 ** 6)
    monkeypatch.setattr(FormDataIter, 'max_field_size', 1000)
    assert post(app, encode([('a', 'x' * 1000)])).status_code == 200
    assert post(app, encode([('a', 'x' * 1001)])).status_code == 413
    # files are not bounded by the field limits
    assert post(app, encode([('f', ('f', b'x' * 5000))])).status_code == 200
    monkeypatch.setattr(FormDataIter, 'max_form_memory_size', 1500)
    assert post(app, encode([('a', 'x' * 1000), ('b', 'x' * 1000)])).status_code == 413


def test_body_over_max_content_length_is_413():
    app = form_app()  # the default limit: 16 KiB
    res = post(app, encode([('f', ('big.bin', b'x' * 20000))]))
    assert res.status_code == 413
    app = form_app(max_content_length=30000)
    res = post(app, encode([('f', ('big.bin', b'x' * 20000))]))
    assert res.status_code == 200


# -- temporary files -------------------------------------------------------------------

@pytest.fixture
def tmpdir_for_uploads(tmp_path, monkeypatch):
    """Point the system temp dir (tempfile.gettempdir()) at an empty directory."""
    d = tmp_path / 'systmp'
    d.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(d))
    return d


def test_large_upload_spills_to_system_temp_dir_and_is_removed(
        tmpdir_for_uploads, monkeypatch):
    monkeypatch.chdir(tmpdir_for_uploads.parent)
    app = Microdot()
    app.max_content_length = 2 * 1024 * 1024
    seen = {}
    data = os.urandom(1024 * 1024 + 17)

    @app.post('/')
    @with_form_data
    async def upload(request):
        f = request.files['file']
        seen['temp_path'] = f.temp_path
        seen['exists'] = os.path.exists(f.temp_path)
        seen['listing'] = os.listdir(tmpdir_for_uploads)
        seen['small'] = request.files['small'].temp_path
        out = tmpdir_for_uploads.parent / 'saved.bin'
        await f.save(str(out))
        return hashlib.sha256(out.read_bytes()).hexdigest()

    res = post(app, encode([('file', ('big.bin', data)), ('small', ('s.txt', b'tiny'))]))
    assert res.status_code == 200
    assert res.text == hashlib.sha256(data).hexdigest()
    assert os.path.dirname(seen['temp_path']) == str(tmpdir_for_uploads)
    assert seen['exists'] and len(seen['listing']) == 1
    assert seen['small'] is None  # within max_memory_size: kept in memory
    assert os.listdir(tmpdir_for_uploads) == []
    assert sorted(os.listdir(tmpdir_for_uploads.parent)) == ['saved.bin', 'systmp']


def test_temp_files_removed_when_handler_fails(tmpdir_for_uploads):
    app = Microdot()
    app.max_content_length = 10 ** 6

    @app.post('/')
    @with_form_data
    async def upload(request):
        assert os.listdir(tmpdir_for_uploads)
        raise RuntimeError('boom')

    res = post(app, encode([('f', ('a', b'x' * 5000)), ('g', ('b', b'y' * 5000))]))
    assert res.status_code == 500
    assert os.listdir(tmpdir_for_uploads) == []


def test_temp_files_removed_when_parsing_fails(tmpdir_for_uploads):
    app = form_app(max_content_length=10 ** 6)
    body = encode([('f', ('a', b'x' * 5000))])[:-4]  # cut before the close delimiter ends
    body = body + b'Xgarbage'
    assert post(app, body).status_code == 400
    body = encode([('f', ('a', b'x' * 5000))])[:-30]  # truncated inside the file
    assert post(app, body).status_code == 400
    assert os.listdir(tmpdir_for_uploads) == []


def test_copy_and_close_directly(tmpdir_for_uploads):
    app = Microdot()
    app.max_content_length = 10 ** 6
    result = {}

    @app.post('/')
    async def upload(request):
        async for name, value in FormDataIter(request):
            if name == 'mem':
                await value.copy(max_memory_size=10000)
                result['mem_path'] = value.temp_path
                await value.close()  # nothing to remove
            elif name == 'disk':
                await value.copy(max_memory_size=100)
                assert await value.copy() is value  # a second copy is a no-op
                result['disk_exists'] = os.path.exists(value.temp_path)
                result['first'] = await value.read(3)
                await value.close()
                await value.close()
        return 'ok'

    res = post(app, encode([('mem', ('m', b'x' * 5000)), ('disk', ('d', b'abc' * 100))]))
    assert res.status_code == 200
    assert result == {'mem_path': None, 'disk_exists': True, 'first': b'abc'}
    assert os.listdir(tmpdir_for_uploads) == []


def test_forgotten_copy_is_removed_when_collected(tmpdir_for_uploads):
    app = Microdot()
    app.max_content_length = 10 ** 6

    @app.post('/')
    async def upload(request):
        async for name, value in FormDataIter(request):
            await value.copy()  # never closed
        assert len(os.listdir(tmpdir_for_uploads)) == 1
        return 'ok'

    assert post(app, encode([('f', ('a', b'x' * 5000))])).status_code == 200
    import gc
    gc.collect()
    assert os.listdir(tmpdir_for_uploads) == []


# -- FormDataIter ----------------------------------------------------------------------

def test_form_data_iter_streams_parts_in_order(tmp_path):
    app = Microdot()
    app.max_content_length = 10 ** 6
    data = os.urandom(200000)

    @app.post('/')
    async def upload(request):
        items = []
        async for name, value in FormDataIter(request):
            if isinstance(value, FileUpload):
                if name == 'skipped':
                    items.append((name, value.filename, 'skipped'))
                    continue
                if name == 'chunks':
                    sizes = []
                    while True:
                        chunk = await value.read(1000)
                        if not chunk:
                            break
                        sizes.append(len(chunk))
                    items.append((name, value.filename, max(sizes), sum(sizes)))
                else:
                    buf = io.BytesIO()
                    await value.save(buf)
                    await value.save(str(tmp_path / 'empty.bin'))  # nothing left
                    items.append((name, value.filename, value.headers['X-Extra'],
                                  hashlib.sha1(buf.getvalue()).hexdigest()))
            else:
                items.append((name, value))
        return {'items': items}

    body = (encode([('first', '1'), ('skipped', ('s.bin', data)), ('chunks', ('c', data)),
                    ('middle', '2')])[:-len(BOUNDARY) - 6] +
            b'--' + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="saved"; '
            b'filename="x.bin"\r\nX-Extra: yes\r\n\r\n' + data + b'\r\n--' +
            BOUNDARY.encode() + b'--\r\n')
    res = post(app, body)
    assert res.status_code == 200, res.text
    assert res.json['items'] == [
        ['first', '1'], ['skipped', 's.bin', 'skipped'], ['chunks', 'c', 1000, 200000],
        ['middle', '2'], ['saved', 'x.bin', 'yes', hashlib.sha1(data).hexdigest()]]
    assert (tmp_path / 'empty.bin').read_bytes() == b''


def test_form_data_iter_other_content_type_yields_nothing():
    app = Microdot()

    @app.post('/')
    async def upload(request):
        return {'items': [item async for item in FormDataIter(request)]}

    res = run(TestClient(app).post('/', body={'a': 1}))
    assert res.json == {'items': []}


def test_reading_a_skipped_upload_is_an_error():
    app = Microdot()

    @app.post('/')
    async def upload(request):
        uploads = []
        async for name, value in FormDataIter(request):
            if name == 'read':
                assert await value.read() == b'2'
            uploads.append(value)
        with pytest.raises(RuntimeError):
            await uploads[0].read()
        assert await uploads[1].read() == b''  # fully read before moving on: at its end
        return 'ok'

    body = encode([('a', ('a', b'1')), ('read', ('b', b'2')), ('c', ('c', b'3'))])
    assert post(app, body).text == 'ok'


# -- the sans-I/O parser ---------------------------------------------------------------

def parse_all(body, boundary=BOUNDARY, sizes=None):
    parser = MultipartParser(boundary)
    parts = []
    pos = 0
    sizes = list(sizes or [])
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            n = sizes.pop(0) if sizes else len(body)
            n = max(n, 1)
            parser.feed(body[pos:pos + n])
            pos += n
        elif isinstance(event, PartHeaders):
            parts.append([dict(event.headers), b''])
        elif isinstance(event, PartData):
            assert event.data
            parts[-1][1] += event.data
        elif event is PART_END:
            pass
        elif event is FINISHED:
            return [(h, bytes(d)) for h, d in parts]


def test_parser_byte_by_byte():
    body = encode([('a', 'hello'), ('f', ('x', b'\r\n--\r\r\n' * 10))],
                  preamble=b'pre\r\n', epilogue=b'epi')
    expected = parse_all(body)
    assert len(expected) == 2
    assert expected[1][1] == b'\r\n--\r\r\n' * 10
    assert parse_all(body, sizes=[1] * len(body)) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=10,
                                  alphabet=st.characters(min_codepoint=97,
                                                         max_codepoint=122)),
                          st.binary(max_size=300)), max_size=5),
       st.lists(st.integers(min_value=1, max_value=64), max_size=100))
def test_parser_any_split(fields, sizes):
    parts = [(name, ('f', data)) for name, data in fields]
    body = encode(parts)
    result = parse_all(body, sizes=sizes)
    assert [d for _, d in result] == [data for _, data in fields]


def test_parser_eof_before_close_is_an_error():
    parser = MultipartParser('b')
    parser.feed(b'--b\r\n\r\nabc')
    parser.feed(b'')
    with pytest.raises(MultipartError):
        while parser.next_event() is not FINISHED:
            pass


def test_parser_after_finish_ignores_data():
    parser = MultipartParser('b')
    parser.feed(b'--b--\r\n')
    assert parser.next_event() is FINISHED
    parser.feed(b'more')
    parser.feed(b'')
    assert parser.next_event() is FINISHED


def test_parse_options_header():
    assert parse_options_header('form-data; name="a;b"; filename="c d"') == \
        ('form-data', {'name': 'a;b', 'filename': 'c d'})
    assert parse_options_header("attachment; filename*=iso-8859-1'en'%A3%20rates") == \
        ('attachment', {'filename': '£ rates'})
    assert parse_options_header('text/plain; Charset=UTF-8') == \
        ('text/plain', {'charset': 'UTF-8'})
    assert parse_options_header(None) == ('', {})
    with pytest.raises(MultipartError):
        parse_options_header('form-data; name="open')


# -- never a 500 -----------------------------------------------------------------------

VALID = encode([('a', '1'), ('f', ('f.txt', b'data\r\n--x')), ('a', '2')])


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.binary(max_size=400),
    st.builds(lambda i, j, junk: VALID[:i] + junk + VALID[j:],
              st.integers(0, len(VALID)), st.integers(0, len(VALID)),
              st.binary(max_size=20))))
def test_any_body_is_answered_without_a_server_error(body):
    app = form_app()
    res = post(app, body)
    assert res.status_code in (200, 400, 413)
