"""The microdot-redis distribution: its wheel holds only its module and declares the
broker entry points and its two dependencies."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contents_and_metadata(tmp_path):
    subprocess.run([sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir',
                    str(tmp_path), str(ROOT / 'packages' / 'microdot-redis')],
                   check=True, capture_output=True, timeout=180)
    wheel, = tmp_path.glob('microdot_redis-0.1.0-*.whl')
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read('microdot_redis-0.1.0.dist-info/METADATA').decode()
        entry_points = zf.read('microdot_redis-0.1.0.dist-info/entry_points.txt').decode()
    assert [n for n in names if not n.startswith('microdot_redis-0.1.0.dist-info/')] == [
        'microdot/redis_broker.py']
    requires = sorted(line.split(': ', 1)[1] for line in metadata.splitlines()
                      if line.startswith('Requires-Dist: '))
    assert requires == ['microdot-core<1,>=0.1.0', 'redis>=5']
    assert 'License-Expression: MIT' in metadata
    assert '[microdot.brokers]' in entry_points
    for scheme in ('redis', 'rediss', 'unix'):
        assert '%s = microdot.redis_broker:redis_broker' % scheme in entry_points
