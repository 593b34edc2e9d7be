"""Makes ``tests/support.py`` importable and offers a free-port fixture."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import free_port  # noqa: E402


@pytest.fixture
def port():
    return free_port()
