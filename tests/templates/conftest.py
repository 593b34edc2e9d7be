"""Make the microdot-templates modules importable when they are not installed."""
import importlib
import os
import sys

SRC = os.path.abspath(os.path.join(
    os.path.dirname(__file__), '..', '..', 'packages', 'microdot-templates',
    'src'))

try:
    import microdot.utemplate  # noqa: F401
except ImportError:
    sys.path.insert(0, SRC)
    package = sys.modules.get('microdot')
    if package is not None and hasattr(package, '__path__'):
        # ``microdot`` was imported before this path was added (e.g. the core's
        # pkgutil-extended package): extend its search path by hand
        extra = os.path.join(SRC, 'microdot')
        if extra not in list(package.__path__):
            package.__path__.append(extra)
    importlib.invalidate_caches()
    import microdot.utemplate  # noqa: F401
