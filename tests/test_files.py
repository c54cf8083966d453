"""File discovery: .gitignore, default excludes, exclude/extend-exclude, project root."""

from __future__ import annotations

from pathlib import Path

import pathspec
import pytest

from scalelint.config import find_root, load_config
from scalelint.files import discover, report_scope


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def _names(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_discovery_respects_gitignore_and_default_excludes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.scalelint]\nextend-exclude = ['legacy/']\n")
    (tmp_path / ".gitignore").write_text("generated_*.py\n/local/\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".gitignore").write_text("secret.py\n")
    _tree(
        tmp_path,
        [
            "app/views.py",
            "app/secret.py",
            "app/generated_models.py",
            "db/schema.sql",
            "local/notes.py",
            "legacy/old.py",
            ".venv/lib/site.py",
            "node_modules/x/y.py",
            "build/lib/app.py",
            "app/__pycache__/views.cpython-311.py",
            "README.md",
        ],
    )
    config = load_config(tmp_path)
    assert _names(tmp_path, discover(config)) == ["app/views.py", "db/schema.sql"]


def test_explicit_file_is_reported_even_when_excluded(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.scalelint]\nextend-exclude = ['legacy/']\n")
    _tree(tmp_path, ["legacy/old.py", "app/a.py"])
    config = load_config(tmp_path)
    selected, missing = report_scope([tmp_path / "legacy" / "old.py", tmp_path / "nope.py"], config)
    assert _names(tmp_path, selected) == ["legacy/old.py"]
    assert missing == [tmp_path / "nope.py"]


def test_root_is_the_nearest_folder_with_a_config_or_git(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _tree(tmp_path, ["svc/app/main.py", "svc/pyproject.toml"])
    assert find_root(tmp_path / "svc" / "app" / "main.py") == (tmp_path / "svc").resolve()
    _tree(tmp_path, ["other/x.py"])
    assert find_root(tmp_path / "other") == tmp_path.resolve()


EXCLUDE_CASES = {
    "names only": ["build", "venv", "scratch.py"],
    "names and globs": ["build", "*_pb2.py", "app/legacy/", "docs/**/conf.py"],
    # a negation makes the order of patterns matter: pathspec reads them all
    "a negation": ["build", "scratch.py", "!tools/scratch.py"],
}


@pytest.mark.parametrize("case", EXCLUDE_CASES)
def test_excludes_select_what_pathspec_selects(tmp_path: Path, case: str) -> None:
    patterns = EXCLUDE_CASES[case]
    files = [
        "app/views.py",
        "app/build.py",
        "app/build/gen.py",
        "build/keep.py",
        "pkg/venv/x.py",
        "venvs/y.py",
        "scratch.py",
        "tools/scratch.py",
        "api/user_pb2.py",
        "app/legacy/old.py",
        "legacy/app.py",
        "docs/source/conf.py",
        "conf.py",
    ]
    _tree(tmp_path, files)
    (tmp_path / "pyproject.toml").write_text(f"[tool.scalelint]\nexclude = {patterns!r}\n")
    found = _names(tmp_path, discover(load_config(tmp_path)))
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)

    # Excluded by pathspec itself, or under a folder it excludes (the walk does not enter).
    def folders(name: str) -> list[str]:
        parts = name.split("/")
        return ["/".join(parts[:cut]) + "/" for cut in range(1, len(parts))]

    expected = sorted(
        name for name in files if not any(spec.match_file(path) for path in [name, *folders(name)])
    )
    assert found == expected
    assert "app/views.py" in found and len(found) < len(files)
