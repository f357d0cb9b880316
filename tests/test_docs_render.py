"""The documentation's equations render offline in a real browser.

A one-page Sphinx project with the documentation's own MathJax settings (``docs/conf.py``:
the npm package copied into ``_static``) is built and opened in headless Chromium by
``validation/docs_math_render.py``, with host names unresolvable. Skipped where no Chromium
or no installed MathJax package is found (``npm ci --prefix docs``; ``make test`` runs it).
"""

import importlib.util
import json
import pathlib
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _render_script():
    spec = importlib.util.spec_from_file_location(
        "docs_math_render", ROOT / "validation" / "docs_math_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER = _render_script()

PAGE = r"""
Offline math
============

Inline :math:`\log p(x) = \log p_z(f(x)) + \log |\det J_f(x)|` and a numbered equation:

.. math:: \hat w(k) = \sum_{n=0}^{N} w(n) \cos\left(\frac{\pi k n}{N}\right)
   :label: dct

.. math:: \log \left| \det W \right| = \sum_k \log |\hat w(k)|
   :label: logdet

Equation :eq:`dct` gives :eq:`logdet`.
"""


@pytest.mark.skipif(RENDER.find_browser() is None, reason="no Chromium installed")
@pytest.mark.skipif(not (DOCS / "node_modules" / "mathjax").is_dir(),
                    reason="MathJax not installed (npm ci --prefix docs)")
def test_equations_are_typeset_offline_in_chromium(tmp_path):
    from sphinx.cmd.build import build_main

    source = tmp_path / "src"
    source.mkdir()
    (source / "index.rst").write_text(PAGE)
    (source / "conf.py").write_text(textwrap.dedent(f"""
        import runpy
        docs = runpy.run_path({str(DOCS / "conf.py")!r})
        extensions = ["sphinx.ext.mathjax"]
        html_static_path = [{str(DOCS / "_generated" / "mathjax")!r}]
        mathjax_path = docs["mathjax_path"]
        mathjax4_config = docs["mathjax4_config"]
        numfig = math_numfig = True
    """))
    html = tmp_path / "html"
    assert build_main(["-q", "-W", "-b", "html", str(source), str(html)]) == 0
    assert "cdn" not in (html / "index.html").read_text().lower()
    out = tmp_path / "out"
    assert RENDER.main(["--html", str(html), "--page", "index.html", "--min-equations", "3",
                        "--out", str(out)]) == 0
    summary = json.loads((out / "docs_math_render.json").read_text())
    assert summary["numbers"] == 2 and summary["errors"] == 0 and summary["raw_tex"] == 0
    assert (out / "docs_math_render.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_page_with_raw_tex_fails_the_check():
    """The check can fail: TeX left untypeset, MathJax errors, no numbers."""
    dom = '<p>\\(x^2\\)</p><mjx-container display="true"><mjx-merror></mjx-merror>'
    summary = RENDER.inspect_dom(dom)
    assert summary == {"typeset": 1, "display": 1, "errors": 1, "raw_tex": 1, "numbers": 0}
    assert len(RENDER.check(summary, min_equations=2)) == 4
