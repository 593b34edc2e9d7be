"""Template rendering, written against Microdot's public API (see ``app.py``).

Upstream Microdot needs the original ``utemplate`` package on ``sys.path`` for the
uTemplate routes; ``compare_upstream.py`` takes its location from ``--utemplate``.
"""
import os

FLAVOUR = os.environ.get('MICRODOT_FLAVOUR', 'builtin')
if FLAVOUR == 'asgi':
    from microdot.asgi import Microdot
elif FLAVOUR == 'wsgi':
    from microdot.wsgi import Microdot
else:
    from microdot import Microdot
from microdot import Response
from microdot.jinja import Template as JinjaTemplate
from microdot.utemplate import Template as UTemplate

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = 'templates'  # relative: the original utemplate loader needs it
JinjaTemplate.initialize(TEMPLATES)
UTemplate.initialize(TEMPLATES)
app = Microdot()
ITEMS = ['one', 'two', '<three>']


@app.route('/jinja')
async def jinja(request):
    return JinjaTemplate('page.jinja').render(title='Jinja', items=ITEMS), \
        {'Content-Type': 'text/html'}


@app.route('/jinja-stream')
async def jinja_stream(request):
    return JinjaTemplate('page.jinja').generate(title='Jinja', items=ITEMS)


@app.route('/utemplate')
async def utemplate(request):
    return Response(UTemplate('page.html').render('uTemplate', ITEMS),
                    headers={'Content-Type': 'text/html'})


@app.route('/utemplate-empty')
async def utemplate_empty(request):
    return UTemplate('page.html').render('uTemplate', [])


@app.route('/utemplate-stream')
async def utemplate_stream(request):
    return UTemplate('page.html').generate('uTemplate', ITEMS)
