"""The README's code runs: every ```python block marked to run is executed.

Convention (for whoever edits README.md): put an HTML comment on the line right before a
```python fence to have that block tested:

    <!-- test -->            run offline, on the block's own small or synthetic data
    <!-- test: network -->   needs the real datasets; runs only with `-m network`

Each block runs on its own, in a fresh namespace, in a temporary working directory, so a
block must make its own data and imports. Unmarked blocks are not run.
"""
import os
import re
from pathlib import Path

import pytest

README = Path(os.environ.get("NNCORE_README", Path(__file__).resolve().parent.parent / "README.md"))
MARKED_BLOCK = re.compile(r"^<!--\s*test(?::\s*(?P<kind>[\w-]+))?\s*-->\s*\n```python\n(?P<code>.*?)^```",
                          re.MULTILINE | re.DOTALL)


def marked_blocks():
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    blocks = []
    for match in MARKED_BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        kind = match.group("kind") or "offline"
        marks = [pytest.mark.network] if kind == "network" else []
        blocks.append(pytest.param(match.group("code"), id=f"README.md:{line}", marks=marks))
    return blocks or [pytest.param(None, id="no-marked-blocks")]


@pytest.mark.parametrize("code", marked_blocks())
def test_readme_block_runs(code, tmp_path, monkeypatch):
    if code is None:
        pytest.skip(f"{README} has no blocks marked <!-- test -->")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})  # noqa: S102 - the README is ours


def test_marker_convention_is_recognised(tmp_path):
    sample = "intro\n<!-- test -->\n```python\nx = 1\n```\n\n```python\nnot run\n```\n" \
             "<!-- test: network -->\n```python\ny = 2\n```\n"
    (tmp_path / "R.md").write_text(sample)
    global README
    saved, README = README, tmp_path / "R.md"
    try:
        blocks = marked_blocks()
    finally:
        README = saved
    assert [b.values[0] for b in blocks] == ["x = 1\n", "y = 2\n"]
    assert [bool(b.marks) for b in blocks] == [False, True]
