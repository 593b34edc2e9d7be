"""Hello world with a Jinja template, under a WSGI server.

Install:

    pip install 'microdot-wsgi[gunicorn]' 'microdot-templates[jinja]'

then, from the examples/templates/ folder:

    gunicorn hello_wsgi_jinja:app

or from the repository root:

    gunicorn examples.templates.hello_wsgi_jinja:app

Then open http://127.0.0.1:8000 (or http://127.0.0.1:8000/?name=you).
The template is jinja/index.html, next to this file.
"""
import os
from typing import Dict, Tuple

from microdot.jinja import Template
from microdot.wsgi import Microdot, Request

# the templates are next to this module, whatever the current directory is
HERE = os.path.dirname(os.path.abspath(__file__))
Template.initialize(os.path.join(HERE, 'jinja'))

app = Microdot()


@app.route('/')
def indeindex(req: Request) -> Tuple[str, Dict[str, str]]:
    # Jinja escapes the value (autoescaping is on for .html templates)
    name = req.args.get('name', 'World')
    return Template('index.html').render(name=name), \
        {'Content-Type': 'text/html; charset=UTF-8'}
