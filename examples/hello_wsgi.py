"""Hello world under a WSGI server, as Microdot's deployment guide shows it (typed).

    pip install 'microdot-wsgi[gunicorn]'
    gunicorn hello_wsgi:app                # from the examples/ folder
    gunicorn examples.hello_wsgi:app       # or from the repository root

then open http://127.0.0.1:8000.
"""
from microdot.wsgi import Microdot, Request

app = Microdot()


@app.route('/')
def index(req: Request) -> str:
    return 'Hello, World!'
