"""Starting Granian for the tests of both interfaces (tests/asgi/test_asgi_granian.py,
tests/wsgi/test_wsgi_granian.py): a seed example served verbatim, and
``tests/apps/granian_app.py`` through ``microdot run --server granian``.
"""
import httpx

from serving_checks import APPS, EXAMPLES, check_hello, granian_cmd, microdot_run_cmd
from support import ServerProcess, free_port, serve


def serve_example(interface, module):
    """Serve the seed example ``module`` (``hello_asgi:app``...) with ``granian
    --interface interface`` on a free port; a context manager giving the server."""
    port = free_port()
    return serve(granian_cmd(interface, port, module), port, cwd=EXAMPLES)


def check_seed_hello(interface):
    """The seed's ``hello_<interface>.py``, served verbatim, answers its page."""
    with serve_example(interface, 'hello_%s:app' % interface) as server:
        check_hello(server.url)


def check_example_page(url):
    """The example's ``/`` is an HTML page."""
    page = httpx.get(url + '/', timeout=10)
    assert page.status_code == 200 and '<html' in page.text.lower()


def granian_app_server(flavor, *extra, events=None, cls=ServerProcess):
    """``microdot run granian_app:app --server granian *extra`` on a free port, not
    started yet waiting: a ``cls`` with ``MICRODOT_TEST_FLAVOR`` set to ``flavor`` and,
    given ``events``, ``MICRODOT_TEST_EVENTS`` to it."""
    port = free_port()
    env = {'MICRODOT_TEST_FLAVOR': flavor}
    if events is not None:
        env = {'MICRODOT_TEST_EVENTS': events, **env}
    return cls(microdot_run_cmd(port, 'granian_app:app', '--server', 'granian', *extra),
               port, cwd=APPS, env=env)
