"""WebSocket echo under gunicorn: the page at / sends what you type to /echo.

    pip install 'microdot-wsgi[gunicorn]'
    gunicorn --threads 8 echo_wsgi:app             # from the examples/ folder
    gunicorn --threads 8 examples.echo_wsgi:app    # or from the repository root

then open http://127.0.0.1:8000. ``--threads 8`` selects gunicorn's ``gthread`` worker:
each open WebSocket holds one of its 8 threads for as long as it lasts, and the worker
keeps heartbeating, so ``--timeout`` does not cut long sessions (it would with the
default ``sync`` worker, which serves a single connection at a time).
"""
import os

from microdot.wsgi import Microdot, Request, Response, WebSocket, send_file, with_websocket

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'echo.html')

app = Microdot()


@app.route('/')
async def index(request: Request) -> Response:
    return send_file(PAGE)


@app.route('/echo')
@with_websocket
async def echo(request: Request, ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        await ws.send(message)
