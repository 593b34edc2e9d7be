"""The smallest Microdot application.

Run it on the built-in server with either of:

    hatch run serve                      # from the repository root
    microdot run examples.hello:app      # with microdot-core installed
    python examples/hello.py

then open http://127.0.0.1:5000.
"""
from microdot import Microdot, Request

app = Microdot()


@app.route('/')
async def index(request: Request) -> str:
    return 'Hello, World!'


if __name__ == '__main__':
    app.run(host='127.0.0.1', port=5000)
