"""Real multipart uploads through the built-in server (httpx client, loopback socket)."""
import hashlib
import os
import tempfile

import httpx
import pytest

from microdot import Microdot
from microdot.multipart import FileUpload, FormDataIter, with_form_data
from support import live_server

SIZE = 20 * 1024 * 1024 + 12345


@pytest.fixture
def upload_file(tmp_path):
    """A ~20 MB file of random bytes and its SHA-256."""
    path = tmp_path / 'upload.bin'
    digest = hashlib.sha256()
    with open(path, 'wb') as f:
        remaining = SIZE
        while remaining:
            chunk = os.urandom(min(remaining, 1024 * 1024))
            f.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return path, digest.hexdigest()


@pytest.fixture
def system_tmp(tmp_path, monkeypatch):
    d = tmp_path / 'systmp'
    d.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(d))
    return d


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


def make_app(dest):
    app = Microdot()
    app.max_content_length = 64 * 1024 * 1024

    @app.post('/upload')
    @with_form_data
    async def upload(request):
        results = []
        for f in request.files.getlist('file'):
            in_tmp = os.path.dirname(f.temp_path) == tempfile.gettempdir()
            target = os.path.join(dest, 'saved-%d.bin' % len(results))
            await f.save(target)
            results.append({'filename': f.filename, 'size': f.size, 'temp_ok': in_tmp,
                            'sha256': sha256_of(target)})
        return {'files': results, 'fields': request.form.getlist('note')}

    @app.post('/stream')
    async def stream(request):
        out = {}
        async for name, value in FormDataIter(request):
            if isinstance(value, FileUpload):
                target = os.path.join(dest, 'streamed.bin')
                await value.save(target)
                out[name] = sha256_of(target)
            else:
                out[name] = value
        return out

    return app


def test_20mb_upload_with_form_data(tmp_path, upload_file, system_tmp):
    path, digest = upload_file
    dest = tmp_path / 'dest'
    dest.mkdir()
    with live_server(make_app(str(dest))) as srv:
        url = srv.url
        with open(path, 'rb') as f, httpx.Client(timeout=60) as client:
            res = client.post(url + '/upload', data={'note': ['one', 'two']},
                              files=[('file', ('big file.bin', f,
                                               'application/octet-stream'))])
        assert res.status_code == 200, res.text
        body = res.json()
    assert body['fields'] == ['one', 'two']
    assert body['files'] == [{'filename': 'big file.bin', 'size': SIZE, 'temp_ok': True,
                              'sha256': digest}]
    assert sha256_of(dest / 'saved-0.bin') == digest
    assert os.listdir(system_tmp) == []  # the spilled temporary file was removed


def test_20mb_upload_streamed_with_form_data_iter(tmp_path, upload_file, system_tmp):
    path, digest = upload_file
    dest = tmp_path / 'dest'
    dest.mkdir()
    with live_server(make_app(str(dest))) as srv:
        url = srv.url
        with open(path, 'rb') as f, httpx.Client(timeout=60) as client:
            res = client.post(url + '/stream', data={'before': 'x'},
                              files={'file': ('f.bin', f)})
        assert res.status_code == 200, res.text
    assert res.json() == {'before': 'x', 'file': digest}
    assert os.listdir(system_tmp) == []  # streamed straight to the target


def test_upload_over_the_limit_is_413(tmp_path, upload_file):
    path, _ = upload_file
    app = make_app(str(tmp_path))
    app.max_content_length = 1024 * 1024
    with live_server(app) as srv:
        url = srv.url
        with open(path, 'rb') as f, httpx.Client(timeout=60) as client:
            try:
                res = client.post(url + '/upload', files={'file': ('f.bin', f)})
            except httpx.TransportError:  # the server may close while we still send
                return
        assert res.status_code == 413


def test_malformed_upload_is_400(tmp_path):
    with live_server(make_app(str(tmp_path))) as srv:
        url = srv.url
        res = httpx.post(url + '/upload', content=b'--x\r\nno headers end',
                         headers={'Content-Type': 'multipart/form-data; boundary=x'})
        assert res.status_code == 400
