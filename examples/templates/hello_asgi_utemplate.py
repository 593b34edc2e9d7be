"""Hello world with a uTemplate template, under an ASGI server.

Install:

    pip install 'microdot-asgi[uvicorn]' microdot-templates

then, from the examples/templates/ folder:

    uvicorn hello_asgi_utemplate:app

or from the repository root:

    uvicorn examples.templates.hello_asgi_utemplate:app

Then open http://127.0.0.1:8000 (or http://127.0.0.1:8000/?name=you).
The template is utemplate/index.html, next to this file.
"""
import os
from html import escape
from typing import Dict, Tuple

from microdot.asgi import Microdot, Request
from microdot.utemplate import Template

# the templates are next to this module, whatever the current directory is
HERE = os.path.dirname(os.path.abspath(__file__))
Template.initialize(os.path.join(HERE, 'utemplate'))

app = Microdot()


@app.route('/')
async def indeindex(req: Request) -> Tuple[str, Dict[str, str]]:
    # uTemplate does not escape: user input is escaped before it reaches the page
    name = escape(req.args.get('name', 'World'))
    return await Template('index.html').render_async(name=name), \
        {'Content-Type': 'text/html; charset=UTF-8'}
