"""A page streamed to the client while it is being rendered, with either engine.

The route returns ``Template(...).generate_async(...)``: Microdot sends each chunk
as the template produces it (chunked transfer encoding), so the top of the page
reaches the browser before the slow rows below it are computed. The rows come from
a generator that the template iterates; it runs in worker threads, so its
``time.sleep`` (standing in for a slow query) does not block the event loop.

Install:

    pip install 'microdot-asgi[uvicorn]' 'microdot-templates[jinja]'

then, from the examples/templates/ folder, with uTemplate or with Jinja:

    uvicorn streaming:app
    TEMPLATE_ENGINE=jinja uvicorn streaming:app

or from the repository root:

    TEMPLATE_ENGINE=jinja uvicorn examples.templates.streaming:app

Then run ``curl -N http://127.0.0.1:8000/?rows=10`` to watch the rows arrive one by
one (browsers may buffer the first kilobyte or so before they display anything).
Under a WSGI server, return ``generate(...)`` from a plain ``def`` route instead.
"""
import os
import time
from typing import AsyncIterator, Dict, Iterator, Tuple

from microdot.asgi import Microdot, Request
from microdot.templates import Template

ENGINE = os.environ.get('TEMPLATE_ENGINE') or 'utemplate'
# each engine has its own template folder next to this module: jinja/ or utemplate/
Template.initialize(engine=ENGINE, template_dir=os.path.join(
    os.path.dirname(os.path.abspath(__file__)), ENGINE))

app = Microdot()
DELAY = 0.2  # seconds per row


def slow_rows(count: int) -> Iterator[Dict[str, int]]:
    """Rows that take a while to compute, produced one at a time."""
    for n in range(1, count + 1):
        time.sleep(DELAY)
        yield {'n': n, 'square': n * n}


@app.route('/')
async def index(req: Request) -> Tuple[AsyncIterator[str], Dict[str, str]]:
    try:
        count = max(1, min(50, int(req.args.get('rows', '5'))))
    except ValueError:
        count = 5
    return Template('stream.html').generate_async(
        title='Squares', rows=slow_rows(count)), \
        {'Content-Type': 'text/html; charset=UTF-8'}
