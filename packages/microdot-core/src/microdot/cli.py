"""The ``microdot`` command: run an application, list plugins, show the version."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Set

from . import plugins

#: Options of ``microdot run`` that only some servers support, with their flags.
SERVER_OPTIONS = {'workers': '--workers', 'reload': '--reload', 'threads': '--threads',
                  'worker_class': '--worker-class', 'access_log': '--access-log',
                  'interface': '--interface'}

#: Python packages of the servers the plugins run, by server name.
SERVER_PACKAGES = {'uvicorn': 'uvicorn', 'hypercorn': 'hypercorn', 'gunicorn': 'gunicorn',
                   'waitress': 'waitress', 'granian': 'granian'}


class CLIError(Exception):
    """A usage error reported as one line, without a traceback."""


def load_app(target: str) -> Any:
    """Import ``module:attribute`` (attribute defaults to ``app``) from the cwd.

    Args:
        target: ``MODULE:APP``, such as ``'hello:app'``.

    Returns:
        The application.

    Raises:
        CLIError: The module cannot be imported, has no such attribute, or the
            attribute is not a Microdot application.
    """
    module_name, _, attr = target.partition(':')
    if not module_name:
        raise CLIError('expected MODULE:APP, got %r' % target)
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name or (exc.name and module_name.startswith(exc.name + '.')):
            raise CLIError('could not import module %r (from %s)'
                           % (module_name, os.getcwd())) from None
        raise
    obj: Any = module
    for part in (attr or 'app').split('.'):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError('module %r has no attribute %r' % (module_name, attr or 'app')) \
                from None
    check_app(obj, '%s:%s' % (module_name, attr or 'app'))
    return obj


def _what(obj: Any) -> str:
    """A few words saying what ``obj`` is (for error messages)."""
    import inspect
    if inspect.isclass(obj):
        return 'the class %s' % obj.__name__
    if inspect.ismodule(obj):
        return 'the module %s' % obj.__name__
    if inspect.isroutine(obj):
        return 'a function' if inspect.isfunction(obj) else 'a callable'
    return 'a %s object' % type(obj).__name__


def check_app(obj: Any, target: str) -> None:
    """Refuse ``obj`` unless it is a Microdot application.

    Args:
        obj: The object to check.
        target: What named it (``MODULE:APP``), for the message.

    Raises:
        CLIError: ``obj`` is not a Microdot application (the message says what it is).
    """
    from .app import Microdot
    if isinstance(obj, Microdot):
        return
    import inspect
    hint = ''
    if inspect.isclass(obj) and issubclass(obj, Microdot):
        hint = '; create one (app = %s()) and name it' % obj.__name__
    elif inspect.isroutine(obj):
        hint = '; name the application the routes are added to (usually app)'
    raise CLIError('%s is %s, not a Microdot application; expected MODULE:APP naming a '
                   'Microdot() instance, e.g. %s:app%s'
                   % (target, _what(obj), target.partition(':')[0], hint))


def parse_workers(value: str) -> Any:
    """Parse ``--workers``: a number, or ``auto`` (also ``0``) for one per CPU.

    Args:
        value: The option's text.

    Returns:
        The number, or ``'auto'``.

    Raises:
        argparse.ArgumentTypeError: Neither a number >= 0 nor ``auto``.
    """
    if value.lower() == 'auto':
        return 'auto'
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError('expected a number or "auto", got %r' % value) \
            from None
    if number < 0:
        raise argparse.ArgumentTypeError('expected a number >= 0 or "auto", got %d' % number)
    return number


def _version_line() -> str:
    # From the metadata, not microdot.__version__: when upstream Microdot's
    # __init__.py replaced ours, that attribute is upstream's version.
    from importlib.metadata import PackageNotFoundError, version
    try:
        core = version('microdot-core')
    except PackageNotFoundError:  # a source tree that is not installed
        core = '0+unknown'
    return 'microdot-core %s (Python %s)' % (core, sys.version.split()[0])


def _core_replaced() -> Optional[plugins.Clash]:
    """The clash report if the imported ``microdot`` package is not microdot-core's.

    That happens when upstream Microdot was installed after microdot-core (its
    ``__init__.py`` replaced ours, so ``import microdot`` could not warn) or when
    uninstalling it deleted the files both own. The check is one attribute lookup;
    the report (metadata and file hashes) is only computed in that case. The other
    case, upstream's metadata left next to our intact files, is warned about by
    ``import microdot`` itself and does not stop the CLI.
    """
    module = sys.modules.get('microdot')
    if getattr(module, '_DISTRIBUTION', None) == 'microdot-core':
        return None
    return plugins.find_clash()


def _report(clash: plugins.Clash, first: str) -> List[str]:
    lines = clash.describe()
    return [first + lines[0]] + ['  ' + line for line in lines[1:]]


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``microdot run``: serve an application with the chosen server.

    Args:
        args: The parsed command line.

    Returns:
        The exit status, once the server stopped.

    Raises:
        CLIError: The command cannot run: upstream Microdot replaced microdot-core, an
            option the server does not support, contradicting options, or a missing
            server package.
        microdot.listener.ServeError: The port is in use.
    """
    clash = _core_replaced()
    if clash is not None:
        # The app and the server would mix upstream's modules with ours.
        raise CLIError('microdot-core cannot run in this environment:\n'
                       + '\n'.join(_report(clash, '  ')))
    server = plugins.get_server(args.server)
    supported: Set[str] = set(getattr(server, 'options', ()))
    options: Dict[str, Any] = {}
    for name, flag in SERVER_OPTIONS.items():
        value = getattr(args, name)
        if value is None or (value is False and name != 'access_log'):
            continue
        if name not in supported:
            if name == 'access_log':
                flag = '--access-log' if value else '--no-access-log'
            others = [n for n in plugins.registry.names('servers')
                      if name in getattr(_safe_load(n), 'options', ())]
            hint = ('; servers that support it: %s' % ', '.join(sorted(others))) if others \
                else ''
            raise CLIError("the '%s' server does not support %s%s"
                           % (args.server, flag, hint))
        options[name] = value
    if args.server == 'builtin':
        options.setdefault('access_log', True)
        if args.reload and args.workers not in (None, 1):
            raise CLIError('--reload and --workers cannot be used together: the reloader '
                           'runs one process; drop --workers while developing')
    from . import console
    workers = options.get('workers')
    configured = console.configure_logging(
        workers=workers if isinstance(workers, int) and workers > 1
        else (2 if workers in (0, 'auto') else 1))
    package = SERVER_PACKAGES.get(args.server)
    if configured and package:  # e.g. waitress says where it serves at INFO
        server_logger = logging.getLogger(package)
        if server_logger.level == logging.NOTSET:
            server_logger.setLevel(logging.INFO)
    target = args.target
    from .listener import PortInUse, ServeError
    try:
        server.run(target, host=args.host, port=args.port, **options)
    except PortInUse as exc:
        raise ServeError('%s; pick another with --port' % exc) from None
    except ImportError as exc:
        prefix = "the '%s' server needs" % args.server
        missing = exc.name is None and str(exc).startswith(prefix)
        if missing:
            raise CLIError(str(exc)) from None
        if package and exc.name and exc.name.split('.')[0] == package:
            raise CLIError('%s is not installed: %s' % (
                package, plugins.install_hint('servers', args.server))) from None
        raise
    return 0


def _safe_load(name: str) -> Any:
    try:
        return plugins.get_server(name)
    except plugins.PluginError:
        return None


def server_missing(info: plugins.PluginInfo) -> Optional[str]:
    """What to install when ``info`` is a server plugin whose server is not installed.

    Args:
        info: The plugin.

    Returns:
        The command (``pip install 'microdot-asgi[hypercorn]'``), or ``None`` when
        nothing is missing.
    """
    if info.kind != 'servers':
        return None
    package = SERVER_PACKAGES.get(info.name)
    if package is None:
        # a server that is a program, not a module (uWSGI), says itself: installed()
        try:
            check = getattr(plugins.registry.load('servers', info.name), 'installed', None)
        except plugins.PluginError:
            return None
        if check is None or check():
            return None
        extra = info.distribution and '%s[%s]' % (info.distribution, info.name)
        return "pip install '%s'" % (extra or plugins.KNOWN_PROVIDERS['servers']
                                     .get(info.name, info.name))
    import importlib.util
    try:
        if importlib.util.find_spec(package) is not None:
            return None
    except (ImportError, ValueError):  # a broken package counts as missing
        pass
    extra = ('%s[%s]' % (info.distribution, info.name) if info.distribution
             else plugins.KNOWN_PROVIDERS['servers'].get(info.name, package))
    return "pip install '%s'" % extra


def _describe(info: plugins.PluginInfo) -> str:
    """A plugin's name as ``microdot plugins`` lists it, with what is missing."""
    missing = server_missing(info)
    return info.name if missing is None else '%s (not installed: %s)' % (info.name, missing)


def cmd_plugins(args: argparse.Namespace) -> int:
    """Run ``microdot plugins``: list the family's distributions and their plugins.

    Args:
        args: The parsed command line.

    Returns:
        0, or 1 when upstream Microdot clashes with the family (the environment needs
        repair).
    """
    from importlib.metadata import PackageNotFoundError, distributions, version
    family: Dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata['Name'] or ''
        if name.lower().startswith('microdot-'):
            family[name] = dist.version
    try:
        family.setdefault('microdot-core', version('microdot-core'))
    except PackageNotFoundError:
        pass
    print('microdot plugin API %s' % plugins.format_api(plugins.PLUGIN_API))
    infos = plugins.registry.infos()
    for dist_name in sorted(family):
        print('%s %s' % (dist_name, family[dist_name]))
        provided = [i for i in infos if (i.distribution or '').lower() == dist_name.lower()]
        for kind in plugins.GROUPS:
            names = sorted(_describe(i) for i in provided if i.kind == kind)
            if names:
                print('  %-10s %s' % (kind + ':', ', '.join(names)))
    orphans = [i for i in infos if not i.distribution or i.distribution not in family]
    for info in orphans:
        print('%s (%s): %s = %s' % (info.distribution or '?', info.version or '?',
                                     info.kind, info.name))
    clash = plugins.find_clash()
    if clash is None:
        return 0
    # A health check that scripts and CI can act on: the environment needs repair.
    print('\n'.join(_report(clash, 'problem: ')))
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The ``microdot`` command's argument parser.

    Returns:
        The parser, with the ``run`` and ``plugins`` commands.
    """
    parser = argparse.ArgumentParser(
        prog='microdot', description='Microdot web framework command-line interface.')
    parser.add_argument('--version', action='store_true',
                        help="show microdot-core's version and exit")
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    run = sub.add_parser('run', help='serve an application',
                         description='Serve MODULE:APP with the built-in server or a '
                                     'server plugin (see "microdot plugins").')
    run.add_argument('target', metavar='MODULE:APP',
                     help='the application, e.g. "hello:app" (APP defaults to "app")')
    run.add_argument('--server', default='builtin',
                     help='server to use (default: builtin); e.g. uvicorn, hypercorn, '
                          'gunicorn with their plugins installed')
    run.add_argument('--host', default='127.0.0.1', help='address to bind (default: 127.0.0.1)')
    run.add_argument('--port', type=int, default=5000, help='port (default: 5000)')
    run.add_argument('--workers', type=parse_workers, default=None, metavar='N',
                     help='worker processes; 0 or "auto": one per CPU')
    run.add_argument('--threads', type=int, default=None, help='threads per worker')
    run.add_argument('--worker-class', default=None, help='worker class (gunicorn)')
    run.add_argument('--interface', choices=('asgi', 'wsgi'), default=None,
                     help='the interface Granian serves the application with (default: '
                          'asgi when microdot-asgi is installed)')
    run.add_argument('--reload', action='store_true',
                     help='restart when a .py file or a template of the application '
                          'changes (development)')
    run.add_argument('--access-log', action=argparse.BooleanOptionalAction, default=None,
                     help='log one line per request (default: on with the built-in '
                          'server)')
    run.set_defaults(func=cmd_run)
    plug = sub.add_parser('plugins', help='list installed microdot distributions and '
                                          'what they register')
    plug.set_defaults(func=cmd_plugins)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``microdot`` command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(_version_line())
        clash = _core_replaced()
        if clash is not None:
            print('\n'.join(_report(clash, 'microdot: warning: ')), file=sys.stderr)
        return 0
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    from .listener import ServeError
    try:
        status: int = args.func(args)
        return status
    except (CLIError, plugins.PluginError) as exc:
        print('microdot: error: %s' % exc, file=sys.stderr)
        return 2
    except ServeError as exc:  # the server could not run (port in use, workers failed)
        print('microdot: error: %s' % exc, file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        return 130
