import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scalelint.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `scalelint ARGS` in-process with tmp_path as the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env)

    return invoke
