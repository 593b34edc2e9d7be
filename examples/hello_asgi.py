"""Hello world under an ASGI server, exactly as Microdot's deployment guide shows.

    pip install 'microdot-asgi[uvicorn]'
    uvicorn hello_asgi:app                 # from the examples/ folder
    uvicorn examples.hello_asgi:app        # or from the repository root

then open http://127.0.0.1:8000.
"""
from microdot.asgi import Microdot

app = Microdot()


@app.route('/')
async def index(req):
    return 'Hello, World!'
