"""WebSocket echo under an ASGI server: the page at / sends what you type to /echo.

    pip install 'microdot-asgi[uvicorn]'
    uvicorn echo_asgi:app                  # from the examples/ folder
    uvicorn examples.echo_asgi:app         # or from the repository root

then open http://127.0.0.1:8000.
"""
import os

from microdot.asgi import Microdot, Request, Response, send_file
from microdot.websocket import WebSocket, with_websocket

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
