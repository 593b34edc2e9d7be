"""Release machinery for the Microdot family (``tools/release.py`` is its command line).

One module per concept: :mod:`.project` reads and edits a package's ``pyproject.toml``
and sources, :mod:`.changelog` reads and promotes a Keep a Changelog file,
:mod:`.plugin_api` keeps the plugin-API history and computes the dependants' ranges,
:mod:`.dists` builds and checks the sdist and wheel. The policy they implement is in
``docs/releasing.md``.
"""

#: The family's public repository: project URLs and changelog links all start with it.
REPOSITORY = 'https://github.com/microdot-family/microdot-family'

#: The distribution every other package of the family depends on.
CORE = 'microdot-core'


class ReleaseError(Exception):
    """A release step refused or failed; the message says what to do about it."""


def tag_name(name: str, version: str) -> str:
    """The git tag of one package's release, e.g. ``microdot-asgi-v0.2.0``.

    Args:
        name: The distribution name.
        version: The released version.

    Returns:
        The tag name.
    """
    return '%s-v%s' % (name, version)
