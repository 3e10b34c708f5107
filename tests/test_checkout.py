"""Running from a source checkout whose compiled core is not built (issue 15 item 4): Python
imports the source tree's ``nncore`` from the current directory, which has no ``_core``; nncore
says so and how to fix it in one line, instead of ``cannot import name '_core'``. The README
installs in a way that works from the checkout (and .ci/run installs exactly as it says)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nncore

REPOSITORY = Path(__file__).resolve().parent.parent
FIX = "pip install -e ."


@pytest.fixture
def checkout(tmp_path):
    """A copy of the source tree as a fresh clone has it: the package without its compiled core."""
    root = tmp_path / "nncore-clone"
    shutil.copytree(Path(nncore.__file__).parent, root / "nncore",
                    ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "__pycache__", "*.c"))
    (root / "src_c").mkdir()
    (root / "setup.py").write_text("# the clone's build script\n")
    return root


# An editable install's import finder would hand the copy the compiled core of the tree it was
# installed from; next to a regular install (pip install .) there is no such finder. Without it,
# this is exactly what ``python -m nncore ...`` / ``python -c ...`` do in the clone.
_WITHOUT_EDITABLE_FINDERS = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]\n")


def run_in(directory, *argv):
    if argv[0] == "-m":
        code = (f"{_WITHOUT_EDITABLE_FINDERS}import runpy\nsys.argv = {[argv[1], *argv[2:]]!r}\n"
                f"runpy.run_module({argv[1]!r}, run_name='__main__', alter_sys=True)\n")
    else:
        code = _WITHOUT_EDITABLE_FINDERS + argv[1]
    return subprocess.run([sys.executable, "-c", code], cwd=directory, capture_output=True, text=True, check=False)


def test_python_m_nncore_train_in_the_checkout_says_what_happened_and_how_to_fix_it(checkout):
    result = run_in(checkout, "-m", "nncore", "train", "--epochs", "1", "--backend", "cython")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    message = lines[0]
    assert message.startswith("nncore: error: ")
    assert f"{checkout / 'nncore'}" in message and "compiled core" in message
    assert FIX in message and "build_ext --inplace" in message and "another directory" in message


def test_a_default_backend_fit_in_the_checkout_raises_the_same_one_line_import_error(checkout):
    code = ("import numpy as np, nncore\n"
            "try:\n"
            "    nncore.MLP([4, 2], seed=0).fit(np.zeros((8, 4)), np.zeros(8, int), epochs=1, verbose=0)\n"
            "except ImportError as error:\n"
            "    print(type(error).__name__, '|', error)\n")
    result = run_in(checkout, "-c", code)
    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.strip().split(" | ", 1)
    assert kind == "ImportError" and "\n" not in message
    assert "cannot import name" not in message and FIX in message and str(checkout / "nncore") in message


def test_the_numpy_backend_still_works_from_the_checkout(checkout):
    code = ("import numpy as np, nncore\n"
            "h = nncore.MLP([4, 2], seed=0).fit(np.zeros((8, 4)), np.zeros(8, int), epochs=1, backend='numpy', "
            "verbose=0)\nprint(len(h))\n")
    result = run_in(checkout, "-c", code)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr


def test_the_readme_installs_editable_and_ci_installs_as_the_readme_says():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    install = next(line for line in first_block.splitlines() if line.startswith("pip install"))
    assert install.split("#")[0].split() == ["pip", "install", "-e", '".[dev]"']
    ci = (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]"' in ci.split('step "install')[1].splitlines()[1]
