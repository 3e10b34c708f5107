"""The README's and the documentation's code runs: every ```python block marked to run is executed.

Convention (for whoever edits README.md or a page under docs/): put an HTML comment on the line
right before a ```python fence to have that block tested:

    <!-- test -->            run offline, on the block's own small or synthetic data
    <!-- test: network -->   needs the real datasets; runs only with `-m network`

Each block runs on its own, in a fresh namespace, in a temporary working directory, so a
block must make its own data and imports. Unmarked blocks are not run.

The README stays the front door (short, its links alive), and every guide page is in the
site's navigation.
"""
import os
import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
README = Path(os.environ.get("NNCORE_README", REPOSITORY / "README.md"))
DOCS = REPOSITORY / "docs"
MARKED_BLOCK = re.compile(r"^<!--\s*test(?::\s*(?P<kind>[\w-]+))?\s*-->\s*\n```python\n(?P<code>.*?)^```",
                          re.MULTILINE | re.DOTALL)
#: The README is the front door, not the lab notebook (issue 23): what nncore is, the two
#: commands, a quick start, one table, links.
README_MAX_LINES = 250


def documents():
    """The README and every Markdown page of the documentation."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def marked_blocks(paths=None):
    blocks = []
    for path in paths or documents():
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        name = path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path.name
        for match in MARKED_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            kind = match.group("kind") or "offline"
            marks = [pytest.mark.network] if kind == "network" else []
            blocks.append(pytest.param(path, match.group("code"), id=f"{name}:{line}", marks=marks))
    return blocks or [pytest.param(None, None, id="no-marked-blocks")]


@pytest.mark.parametrize("path, code", marked_blocks())
def test_documented_block_runs(path, code, tmp_path, monkeypatch):
    if code is None:
        pytest.skip("no page has blocks marked <!-- test -->")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(path), "exec"), {"__name__": "__readme__"})  # noqa: S102 - the pages are ours


def test_marker_convention_is_recognised(tmp_path):
    sample = "intro\n<!-- test -->\n```python\nx = 1\n```\n\n```python\nnot run\n```\n" \
             "<!-- test: network -->\n```python\ny = 2\n```\n"
    (tmp_path / "R.md").write_text(sample)
    blocks = marked_blocks([tmp_path / "R.md"])
    assert [b.values[1] for b in blocks] == ["x = 1\n", "y = 2\n"]
    assert [bool(b.marks) for b in blocks] == [False, True]


def test_the_guide_pages_have_tested_blocks_too():
    pages = {path.parent.name + "/" + path.name for path, _ in (b.values for b in marked_blocks()) if path != README}
    assert {"guide/training.md", "guide/callbacks.md", "guide/data.md", "guide/kaggle.md"} <= pages


def test_the_readme_is_the_front_door_short_with_its_links_alive():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local, "the README links to its documentation"
    missing = [link for link in local if not (README.parent / link).exists()]
    assert missing == []


def test_every_guide_page_is_in_the_sites_navigation():
    navigation = (REPOSITORY / "mkdocs.yml").read_text(encoding="utf-8")
    # Pages whose name starts with "_" are parts other pages include, not pages of their own.
    pages = [path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md") if not path.name.startswith("_")]
    assert pages and [page for page in pages if f": {page}" not in navigation] == []


def test_what_the_readme_says_pip_install_brings_and_the_extras_it_names_are_what_pyproject_declares():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", requirement)[0].lower() for requirement in project["dependencies"]}
    assert names == {"numpy", "scipy", "threadpoolctl", "tqdm"}
    text = README.read_text(encoding="utf-8")
    assert "NumPy, SciPy, threadpoolctl\nand tqdm" in text or "NumPy, SciPy, threadpoolctl and tqdm" in text
    named = set(re.findall(r"`nncore\[(\w+)\]`", text))
    assert named and named <= set(project["optional-dependencies"])
