"""Hello world under an ASGI server, as Microdot's deployment guide shows it (typed).

    pip install 'microdot-asgi[uvicorn]'
    uvicorn hello_asgi:app                 # from the examples/ folder
    uvicorn examples.hello_asgi:app        # or from the repository root

then open http://127.0.0.1:8000.
"""
from microdot.asgi import Microdot, Request

app = Microdot()


@app.route('/')
async def index(req: Request) -> str:
    return 'Hello, World!'
