"""Every ```python snippet in README.md runs, so the README cannot rot."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 10


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index):
    code = "import jax\nimport jax.numpy as jnp\n" + SNIPPETS[index]
    exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": f"readme_{index}"})
