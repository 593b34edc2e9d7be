"""Pages sharing one layout, with either engine and the same route code.

Jinja pages inherit from a base template (jinja/page.html does
``{% extends "base.html" %}`` and fills its blocks); uTemplate has no inheritance,
so utemplate/page.html includes a shared header and footer instead. The engine is
chosen once, with ``microdot.templates.Template.initialize``; the routes below do
not depend on it.

Install:

    pip install 'microdot-asgi[uvicorn]' 'microdot-templates[jinja]'

then, from the examples/templates/ folder, with uTemplate or with Jinja:

    uvicorn layout:app
    TEMPLATE_ENGINE=jinja uvicorn layout:app

or from the repository root:

    TEMPLATE_ENGINE=jinja uvicorn examples.templates.layout:app

Then open http://127.0.0.1:8000 and http://127.0.0.1:8000/about.
"""
import os
from typing import Dict, Tuple

from microdot.asgi import Microdot, Request
from microdot.templates import Template, render_template_async

ENGINE = os.environ.get('TEMPLATE_ENGINE') or 'utemplate'
# each engine has its own template folder next to this module: jinja/ or utemplate/
Template.initialize(engine=ENGINE, template_dir=os.path.join(
    os.path.dirname(os.path.abspath(__file__)), ENGINE))

app = Microdot()
HTML = {'Content-Type': 'text/html; charset=UTF-8'}


@app.route('/')
async def index(req: Request) -> Tuple[str, Dict[str, str]]:
    return await render_template_async(
        'page.html', title='Home', items=['one layout', 'two engines']), HTML


@app.route('/about')
async def about(req: Request) -> Tuple[str, Dict[str, str]]:
    return await render_template_async(
        'page.html', title='About',
        items=['rendered by ' + Template.engine_name()]), HTML
