"""One application exercising what typical Microdot 2.x applications use.

Written against Microdot's public API only, so that the very same file runs on
upstream Microdot 2.7 and on this family. ``MICRODOT_FLAVOUR`` picks where ``Microdot``
comes from: ``builtin`` (``microdot``), ``asgi`` (``microdot.asgi``) or ``wsgi``
(``microdot.wsgi``). ``compare_upstream.py`` serves it with both implementations and
compares the answers byte for byte.
"""
import asyncio
import os

FLAVOUR = os.environ.get('MICRODOT_FLAVOUR', 'builtin')
if FLAVOUR == 'asgi':
    from microdot.asgi import Microdot
elif FLAVOUR == 'wsgi':
    from microdot.wsgi import Microdot
else:
    from microdot import Microdot
from microdot import Response, abort, redirect, send_file
from microdot.cors import CORS
from microdot.multipart import with_form_data
from microdot.session import Session, with_session
from microdot.sse import with_sse
from microdot.websocket import with_websocket

HERE = os.path.dirname(os.path.abspath(__file__))
app = Microdot()
Session(app, secret_key='top-secret')
api = Microdot()
CORS(api, allowed_origins=['https://example.org'], allow_credentials=True)


@app.before_request
async def before(request):
    if request.path == '/blocked':
        return 'blocked by hook', 403


@app.after_request
async def after(request, response):
    response.headers['X-After'] = 'yes'


@app.errorhandler(404)
async def not_found(request):
    return {'error': 'not found'}, 404


@app.errorhandler(ZeroDivisionError)
async def zero(request, exc):
    return 'division by zero', 400


@app.route('/')
async def index(request):
    return 'Hello, World!'


@app.route('/sync')
def sync_index(request):
    return 'sync handler'


@app.route('/html')
async def html(request):
    return '<h1>Hi</h1>', {'Content-Type': 'text/html; charset=UTF-8'}


@app.route('/json')
async def json_route(request):
    return {'message': 'Hello, World!', 'list': [1, 2.5, None, True], 'uni': 'é'}


@app.route('/list')
async def list_route(request):
    return [1, 'two', {'three': 3}]


@app.route('/status')
async def status(request):
    return 'created', 201


@app.route('/status-headers')
async def status_headers(request):
    return 'teapot', 418, {'X-Tea': 'earl grey'}


@app.route('/empty')
async def empty(request):
    return None


@app.route('/bytes')
async def raw_bytes(request):
    return b'\x00\x01binary'


@app.route('/abort')
async def do_abort(request):
    abort(401)


@app.route('/abort-reason')
async def do_abort_reason(request):
    abort(406, 'Not acceptable here')


@app.route('/crash')
async def crash(request):
    raise RuntimeError('boom')


@app.route('/zero')
async def zero_route(request):
    return 1 // 0


@app.route('/redirect')
async def do_redirect(request):
    return redirect('/target')


@app.route('/response')
async def response_obj(request):
    res = Response('custom', status_code=202, headers={'X-Custom': '1'})
    res.set_cookie('plain', 'value')
    res.set_cookie('full', 'v2', path='/p', max_age=60, http_only=True, secure=True)
    return res


@app.route('/delete-cookie')
async def delete_cookie(request):
    res = Response('bye')
    res.delete_cookie('plain')
    return res


@app.route('/args')
async def args(request):
    return {'args': {k: request.args.getlist(k) for k in request.args},
            'query_string': request.query_string, 'path': request.path,
            'url': request.url}


@app.route('/headers')
async def headers(request):
    return {'x-test': request.headers.get('X-Test'), 'cookies': request.cookies,
            'content_type': request.content_type,
            'content_length': request.content_length}


@app.route('/users/<int:uid>/<name>')
async def user(request, uid, name):
    return {'uid': uid, 'name': name}


@app.route('/files/<path:path>')
async def path_arg(request, path):
    return path


@app.route('/re/<re:[a-z]+:word>')
async def re_arg(request, word):
    return word


@app.route('/methods', methods=['POST', 'GET', 'PUT'])
async def methods(request):
    return request.method


@app.post('/echo-json')
async def echo_json(request):
    return {'json': request.json}


@app.post('/echo-form')
async def echo_form(request):
    return {k: request.form.getlist(k) for k in request.form}


@app.post('/echo-body')
async def echo_body(request):
    return request.body


@app.post('/upload')
@with_form_data
async def upload(request):
    files = {}
    for name, f in request.files.items():
        files[name] = {'filename': f.filename, 'type': f.content_type,
                       'size': len(await f.read())}
    return {'form': dict(request.form.items()), 'files': files}


@app.route('/session/set')
@with_session
async def session_set(request, session):
    session['user'] = 'susan'
    session.save()
    return 'saved'


@app.route('/session/get')
@with_session
async def session_get(request, session):
    return {'user': session.get('user')}


@app.route('/static/<path:path>')
async def static(request, path):
    if '..' in path:
        return 'Not found', 404
    return send_file(os.path.join(HERE, 'static', path), max_age=3600)


@app.route('/send-file-type')
async def send_file_type(request):
    return send_file(os.path.join(HERE, 'static', 'notes.txt'),
                     content_type='application/octet-stream')


@app.route('/stream')
async def stream(request):
    async def gen():
        for i in range(3):
            yield 'chunk %d\n' % i
            await asyncio.sleep(0)
    return gen()


@app.route('/stream-sync')
async def stream_sync(request):
    def gen():
        for i in range(3):
            yield b'part %d\n' % i
    return gen()


@app.route('/video')
async def video(request):
    async def frames():
        for i in range(3):
            yield (b'--frame\r\nContent-Type: image/jpeg\r\n\r\n' + b'frame%d' % i
                   + b'\r\n')
    return frames(), 200, {'Content-Type': 'multipart/x-mixed-replace; boundary=frame'}


@app.route('/sse')
@with_sse
async def sse(request, sse):
    await sse.send('hello')
    await sse.send({'a': 1}, event='json')
    await sse.send('with id', event_id='7')


@app.route('/ws')
@with_websocket
async def ws(request, ws):
    while True:
        data = await ws.receive()
        await ws.send(data)


@api.route('/data', methods=['GET', 'POST'])
async def api_data(request):
    return {'api': True}


@api.route('/fail')
async def api_fail(request):
    abort(409)


app.mount(api, url_prefix='/api')
