"""Shared pytest setup: `slow` tests run only on request, `data` tests only with shared data.

- `@pytest.mark.slow`: skipped unless pytest gets `--runslow` or the environment has
  `ENTLINK_SLOW=1`.
- `@pytest.mark.data`: skipped when `../shared/data` (next to the repository) is absent.
  Tests get its path from the `shared_data` fixture.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="run tests marked slow (also enabled by ENTLINK_SLOW=1)",
    )


def _slow_enabled(config) -> bool:
    return bool(config.getoption("--runslow")) or os.environ.get("ENTLINK_SLOW", "") == "1"


def pytest_collection_modifyitems(config, items):
    run_slow = _slow_enabled(config)
    have_data = SHARED_DATA.is_dir()
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow or ENTLINK_SLOW=1")
    skip_data = pytest.mark.skip(reason=f"data: {SHARED_DATA} is absent")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "data" in item.keywords and not have_data:
            item.add_marker(skip_data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (tests using it must be marked `data`)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA
