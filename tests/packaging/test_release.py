"""The release tool (tools/release.py), run on a copy of the repository, never the tree.

``prepare NAME BUMP`` bumps one package with ``hatch version`` semantics, refuses
without a changelog entry, applies the plugin-API rules to microdot-core releases and
keeps the dependants' ``microdot-core`` ranges in line, builds and checks the
distributions and prints the tag. A refusal or a failed build leaves every file as it
was.
"""
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (HERE, ROOT / 'tools'):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from _repo_copy import (DATE, add_entry, changed, copy_repo, core_dependency,  # noqa: E402
                        declare_api, release, set_plugin_api, snapshot, version)
from release import bump  # noqa: E402


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_repo(tmp_path / 'repo')


@pytest.mark.parametrize('how, expected', [
    ('major', '1.0.0'), ('minor', '0.2.0'), ('patch', '0.1.1'), ('fix', '0.1.1'),
    ('release', '0.1.0'), ('minor,rc', '0.2.0rc0'), ('minor,dev', '0.2.0.dev0'),
    ('0.3.0', '0.3.0'),
])
def test_bumps_follow_hatch_version(how, expected):
    assert bump('0.1.0', how) == expected


def test_bump_refuses_to_go_back():
    from releasing import ReleaseError
    with pytest.raises(ReleaseError, match='not higher'):
        bump('0.2.0', '0.1.5')


def test_prepare_releases_one_package_and_prints_its_tag(repo):
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-asgi', 'minor', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == 'Tag to create: microdot-asgi-v0.2.0'
    assert 'twine check --strict: passed' in proc.stdout
    # one package changed: its version and its changelog, nothing else
    after = snapshot(repo)
    assert changed(before, after) == {'packages/microdot-asgi/pyproject.toml',
                                      'packages/microdot-asgi/CHANGELOG.md'}
    assert version(repo, 'microdot-asgi') == '0.2.0'
    assert version(repo, 'microdot-core') == '0.1.0'
    changelog = (repo / 'packages/microdot-asgi/CHANGELOG.md').read_text()
    assert '## [Unreleased]\n\n## [0.2.0] - %s\n' % DATE in changelog
    assert changelog.endswith(
        '[Unreleased]: https://github.com/microdot-family/microdot-family/compare/'
        'microdot-asgi-v0.2.0...HEAD\n[0.2.0]: https://github.com/microdot-family/'
        'microdot-family/releases/tag/microdot-asgi-v0.2.0\n')
    built = sorted(p.name for p in (repo / 'dist' / 'microdot-asgi').iterdir())
    assert built == ['microdot_asgi-0.2.0-py3-none-any.whl', 'microdot_asgi-0.2.0.tar.gz']

    # the next release needs a new entry: the Unreleased section is empty now
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-asgi', 'patch', '--no-build')
    assert proc.returncode == 1
    assert 'no changelog entry for microdot-asgi 0.2.1' in proc.stderr
    assert changed(before, snapshot(repo)) == set()

    add_entry(repo, 'microdot-asgi', 'A fix.', 'Fixed')
    proc = release(repo, 'prepare', 'microdot-asgi', 'patch', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    changelog = (repo / 'packages/microdot-asgi/CHANGELOG.md').read_text()
    assert '## [0.2.1] - %s\n\n### Fixed\n\n- A fix.\n\n## [0.2.0]' % DATE in changelog
    assert ('[0.2.1]: https://github.com/microdot-family/microdot-family/compare/'
            'microdot-asgi-v0.2.0...microdot-asgi-v0.2.1\n') in changelog


def test_a_section_written_for_the_version_is_an_entry(repo):
    path = repo / 'packages/microdot-wsgi/CHANGELOG.md'
    path.write_text(path.read_text().replace('## [Unreleased]\n',
                                             '## [Unreleased]\n\n## [0.1.1] - 2026-11-30\n\n'
                                             '### Security\n\n- A fix.\n\n## [0.1.0] - '
                                             '2026-11-01\n', 1))
    proc = release(repo, 'prepare', 'microdot-wsgi', 'patch', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert '## [0.1.1] - 2026-11-30\n' in path.read_text()  # its own date is kept


@pytest.mark.parametrize('heading, message', [
    ('### Misc', '"### Misc" is not a Keep a Changelog change type'),
    ('## 0.2.0 (unreleased)', 'is not a Keep a Changelog heading'),
])
def test_a_malformed_changelog_is_refused(repo, heading, message):
    path = repo / 'packages/microdot-templates/CHANGELOG.md'
    path.write_text(path.read_text().replace('### Added', heading, 1))
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-templates', 'minor', '--no-build')
    assert proc.returncode == 1
    assert message in proc.stderr
    assert changed(before, snapshot(repo)) == set()


def test_a_failed_build_leaves_the_tree_as_it_was(repo):
    (repo / 'packages/microdot-wsgi/README.md').unlink()  # the metadata's readme
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-wsgi', 'minor')
    assert proc.returncode == 1
    assert 'building microdot-wsgi failed' in proc.stderr
    assert changed(before, snapshot(repo)) == set()


def test_a_released_version_is_refused(repo):
    git = ['git', '-c', 'user.name=t', '-c', 'user.email=t@127.0.0.1']
    subprocess.run(git + ['init', '-q'], cwd=repo, check=True)
    subprocess.run(git + ['add', '.'], cwd=repo, check=True)
    subprocess.run(git + ['commit', '-q', '-m', 'copy'], cwd=repo, check=True)
    subprocess.run(git + ['tag', 'microdot-asgi-v0.2.0'], cwd=repo, check=True)
    proc = release(repo, 'prepare', 'microdot-asgi', 'minor', '--no-build')
    assert proc.returncode == 1
    assert 'tag microdot-asgi-v0.2.0 already exists' in proc.stderr


def test_core_release_without_plugin_api_change_leaves_the_plugins_alone(repo):
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-core', 'minor', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert changed(before, snapshot(repo)) == {'packages/microdot-core/pyproject.toml',
                                               'packages/microdot-core/CHANGELOG.md'}


def test_plugin_api_addition_needs_a_core_minor_and_keeps_old_plugins(repo):
    set_plugin_api(repo, '(1, 1)')
    add_entry(repo, 'microdot-core', 'Plugin API 1.1.', 'Added')
    before = snapshot(repo)
    proc = release(repo, 'prepare', 'microdot-core', 'patch', '--no-build')
    assert proc.returncode == 1
    assert 'needs at least a minor release' in proc.stderr
    assert changed(before, snapshot(repo)) == set()

    proc = release(repo, 'prepare', 'microdot-core', 'minor', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert '"0.2.0" = "1.1"' in (repo / 'tools/plugin-api.toml').read_text()
    # plugins built for 1.0 still work with 0.2.0: their ranges and versions stay
    assert changed(before, snapshot(repo)) == {'packages/microdot-core/pyproject.toml',
                                               'packages/microdot-core/CHANGELOG.md',
                                               'tools/plugin-api.toml'}
    assert 'microdot-core>=0.1.0,<1' in core_dependency(repo, 'microdot-asgi')

    # a plugin that starts using 1.1 needs a core that provides it
    declare_api(repo, 'microdot-asgi', '"1.1"')
    add_entry(repo, 'microdot-asgi', 'Uses plugin API 1.1.')
    proc = release(repo, 'prepare', 'microdot-asgi', 'minor', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert 'microdot-core>=0.2.0,<1' in core_dependency(repo, 'microdot-asgi')
    assert 'microdot-core>=0.1.0,<1' in core_dependency(repo, 'microdot-wsgi')
    assert version(repo, 'microdot-wsgi') == '0.1.0'


def test_plugin_api_break_needs_a_core_major_and_moves_the_plugins(repo):
    set_plugin_api(repo, '(2, 0)')
    add_entry(repo, 'microdot-core', 'Plugin API 2.0.')
    proc = release(repo, 'prepare', 'microdot-core', 'minor', '--no-build')
    assert proc.returncode == 1
    assert 'microdot-core needs a major release' in proc.stderr

    proc = release(repo, 'prepare', 'microdot-core', 'major', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert '"1.0.0" = "2.0"' in (repo / 'tools/plugin-api.toml').read_text()
    # the plugins in the tree still target 1.x: microdot-core 1.0.0 is outside their range
    assert 'microdot-core>=0.1.0,<1' in core_dependency(repo, 'microdot-templates')

    declare_api(repo, 'microdot-templates', '2')
    add_entry(repo, 'microdot-templates', 'Plugin API 2.')
    proc = release(repo, 'prepare', 'microdot-templates', 'major', '--no-build')
    assert proc.returncode == 0, proc.stderr
    assert 'microdot-core>=1.0.0,<2' in core_dependency(repo, 'microdot-templates')
    assert version(repo, 'microdot-templates') == '1.0.0'

    declare_api(repo, 'microdot-wsgi', '3')
    proc = release(repo, 'prepare', 'microdot-wsgi', 'minor', '--no-build')
    assert proc.returncode == 1
    assert 'no microdot-core release provides plugin API 3.0 yet' in proc.stderr


def test_core_major_without_plugin_api_change_widens_the_ranges(repo):
    proc = release(repo, 'prepare', 'microdot-core', 'major', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert '"1.0.0" = "1.0"' in (repo / 'tools/plugin-api.toml').read_text()
    assert 'microdot-core>=0.1.0,<2' in core_dependency(repo, 'microdot-asgi')
    assert version(repo, 'microdot-asgi') == '0.1.0'
    assert 'its version stays 0.1.0' in proc.stdout


def test_the_tree_follows_the_range_policy():
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'release.py'), 'ranges'],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_first_release_keeps_the_written_version(repo):
    proc = release(repo, 'prepare', 'microdot-core', 'release', '--no-build', '--date', DATE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == 'Tag to create: microdot-core-v0.1.0'
    assert version(repo, 'microdot-core') == '0.1.0'
    text = (repo / 'packages/microdot-core/CHANGELOG.md').read_text()
    assert '## [Unreleased]\n\n## [0.1.0] - %s\n' % DATE in text


def test_an_unknown_package_is_named_with_the_known_ones(repo):
    proc = release(repo, 'prepare', 'microdot-foo', 'minor')
    assert proc.returncode == 1
    assert "no package 'microdot-foo' under packages/" in proc.stderr
    assert 'microdot-core, microdot-asgi' in proc.stderr
