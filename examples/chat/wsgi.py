"""The chat application as a WSGI callable, for gunicorn (``-k gthread``)::

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn examples.chat.wsgi:app -k gthread --threads 32 -w 4
"""
from microdot.wsgi import wsgi_adapter

from .app import app as chat_app

app = wsgi_adapter(chat_app)
