"""Sphinx configuration of the refconf documentation.

Build (warnings are errors)::

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The build and the pages are offline: no intersphinx, and MathJax comes from the npm
package pinned in ``docs/package.json`` (``npm ci --prefix docs``, which ``make docs`` runs),
copied into the HTML output; no page loads anything from the network.
Figures are computed from refconf when the build starts (``_scripts/make_figures.py``,
cached on a hash of that script and the refconf sources).
"""

import os
import pathlib
import sys
from typing import ClassVar

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_scripts"))

import sphinx.ext.autosummary
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

import refconf

project = "refconf"
author = "the refconf authors"
copyright = "2025, the refconf authors"
release = refconf.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "_scripts", "build.sh", "README.md", "node_modules"]
html_static_path = ["_static", "_generated/mathjax"]
html_css_files = ["refconf.css"]

numfig = True  # figures and equations numbered per section: (3.2) is eq. 2 of section 3
numfig_secnum_depth = 1
math_numfig = True

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

autosummary_generate = False  # the API pages list their entries with refconf-module
autodoc_default_options = {"member-order": "bysource"}
autodoc_preserve_defaults = True  # show defaults as written (``xp=onp``), not their repr
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

html_theme = "alabaster"
html_theme_options = {
    "description": "Convolutional normalizing flows: the math, checked in code",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "sidebar_width": "250px",
    "show_relbars": True,
}
html_title = f"refconf {release}"
pygments_style = "sphinx"

# --- MathJax, shipped with the pages ------------------------------------------------------
#
# The npm packages mathjax and its default font @mathjax/mathjax-newcm-font (versions pinned
# in package.json / package-lock.json) are copied to _static/mathjax; the font is found
# through MathJax's own "[mathjax]" path, so every page works from a file:// URL or any server.

NODE_MODULES = DOCS / "node_modules"
MATHJAX_FONT = "mathjax-newcm-font"


def stage_mathjax(target=DOCS / "_generated" / "mathjax" / "mathjax"):
    """Copy MathJax's browser components and its CHTML font into ``target`` (once per
    installed version)."""
    import json
    import shutil

    package = NODE_MODULES / "mathjax"
    font = NODE_MODULES / "@mathjax" / MATHJAX_FONT
    if not (package / "tex-mml-chtml.js").is_file() or not (font / "chtml.js").is_file():
        raise RuntimeError("MathJax is not installed for the docs: run `npm ci --prefix docs` "
                           "(`make docs` does) to install the versions in docs/package-lock.json")
    version = json.loads((package / "package.json").read_text())["version"]
    stamp = target / ".version"
    if stamp.is_file() and stamp.read_text() == version:
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("node-main*", "*.md"))
    fonts = target / "fonts" / MATHJAX_FONT
    fonts.mkdir(parents=True)
    shutil.copy2(font / "chtml.js", fonts / "chtml.js")
    shutil.copytree(font / "chtml", fonts / "chtml")
    stamp.write_text(version)


stage_mathjax()
mathjax_path = "mathjax/tex-mml-chtml.js"
mathjax4_config = {"loader": {"paths": {"fonts": "[mathjax]/fonts"}}}

# --- links from every API entry to the theory it implements -----------------------------
#
# Each documented object gets a "Theory:" line pointing to the pages that derive what it
# computes. Lookup: the object's full name, else its module, else its parent package; an
# object with no page is a build error (so new API must be placed in the theory).

THEORY = {
    "cov": ("theory/change-of-variables", "Change of variables and the log-likelihood"),
    "circ": ("theory/circular-convolution", "Circular convolution and the DFT"),
    "sym": ("theory/symmetric-convolution", "Symmetric convolution and the DCT-I"),
    "logdet": ("theory/logdet-deconvolution", "Log-determinant and deconvolution in O(N log N)"),
    "gates": ("theory/elementwise-gates", "The S-Log gate and Lemma 1"),
    "conf": ("theory/conf-step", "The combined layer and the CONF step"),
    "padding": ("theory/padding", "The padding caveat"),
    "grad": ("theory/gradients", "Gradients of the transforms"),
    "engines": ("theory/engines", "Engines, tiers and how they are checked"),
    "toy": ("tutorials/toy-2d", "Tutorial: fit a 2-D density"),
    "digits": ("tutorials/digits", "Tutorial: the 8x8 digits"),
    "sklearn": ("tutorials/sklearn", "Tutorial: ConfDensity as a scikit-learn estimator"),
    "uci": ("tutorials/uci-table1", "Tutorial: the UCI benchmarks of Table 1"),
    "conformance": ("tutorials/conformance", "Tutorial: check your own port"),
}

THEORY_LINKS = {
    # modules (and packages) first, then objects that belong elsewhere
    "refconf": ["cov", "conf"],
    "refconf.primitives": ["sym", "grad"],
    "refconf.primitives.rfft": ["circ", "grad"],
    "refconf.primitives.irfft": ["circ", "grad"],
    "refconf.primitives.rfft_vjp": ["grad"],
    "refconf.primitives.irfft_vjp": ["grad"],
    "refconf.primitives.dct1_vjp": ["grad"],
    "refconf.primitives.idct1_vjp": ["grad"],
    "refconf.primitives.dct1_via_rfft": ["sym", "engines"],
    "refconf.primitives.idct1_via_irfft": ["sym", "engines"],
    "refconf.spectral": ["sym", "circ", "logdet"],
    "refconf.spectral.symmetric_spectrum": ["sym"],
    "refconf.spectral.symmetric_conv": ["sym"],
    "refconf.spectral.symmetric_deconv": ["logdet", "sym"],
    "refconf.spectral.symmetric_log_abs_det": ["logdet", "sym"],
    "refconf.spectral.circular_spectrum": ["circ"],
    "refconf.spectral.circular_kernel": ["circ"],
    "refconf.spectral.circular_conv": ["circ"],
    "refconf.spectral.circular_deconv": ["logdet", "circ"],
    "refconf.spectral.circular_log_abs_det": ["circ", "logdet"],
    "refconf.spectral.check_invertible": ["logdet"],
    "refconf.reference": ["engines"],
    "refconf.reference.dct1_matrix": ["sym", "engines"],
    "refconf.reference.dft_matrix": ["circ", "engines"],
    "refconf.reference.circulant_matrix": ["circ", "engines"],
    "refconf.reference.symmetric_extension": ["sym", "engines"],
    "refconf.bijectors": ["cov"],
    "refconf.bijectors.base": ["cov"],
    "refconf.bijectors.convolution": ["sym", "circ"],
    "refconf.bijectors.convolution.SymmetricConv": ["sym", "logdet"],
    "refconf.bijectors.convolution.CircularConv": ["circ", "logdet"],
    "refconf.bijectors.elementwise": ["gates"],
    "refconf.bijectors.coupling": ["conf"],
    "refconf.bijectors.mixing": ["conf"],
    "refconf.conditioners": ["conf"],
    "refconf.flows": ["cov", "conf"],
    "refconf.estimator": ["sklearn", "toy"],
    "refconf.train": ["cov", "toy"],
    "refconf.scaling": ["cov", "sklearn"],
    "refconf.classical": ["cov", "sklearn"],
    "refconf.health": ["logdet", "gates"],
    "refconf.params": ["sklearn"],
    "refconf.storage": ["sklearn"],
    "refconf.testing": ["engines"],
    "refconf.data": ["toy", "digits", "uci"],
    "refconf.data.toy": ["toy"],
    "refconf.data.digits": ["digits"],
    "refconf.data.units": ["digits", "cov"],
    "refconf.data.padding": ["padding", "uci"],
    "refconf.data.uci": ["uci"],
    "refconf.data.images": ["digits", "cov"],
    "refconf.bijectors.affine": ["conf", "uci"],
    "refconf.bijectors.autoregressive": ["cov", "uci"],
    "refconf.conformance": ["conformance"],
    "refconf.engines": ["engines"],
    "refconf.backend": ["engines"],
    "refconf.baselines": ["uci"],
    "refconf.experiments": ["uci", "padding"],
    "refconf.cli": ["toy", "uci"],
    "refconf.cli_support": ["toy", "uci"],
    "refconf.cli_train": ["toy", "uci"],
    "refconf.demo": ["toy", "digits"],
}


def theory_keys(name):
    """Theory keys of the object ``name``: itself, else the closest enclosing module."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        keys = THEORY_LINKS.get(".".join(parts[:i]))
        if keys:
            return keys
    return None


def add_theory_links(app, what, name, obj, options, lines):
    """Append "Theory: <pages>" to the docstring of every documented top-level object."""
    if what not in ("module", "class", "function", "exception", "data"):
        return
    keys = theory_keys(name)
    if keys is None:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "no theory page for %s: add it to THEORY_LINKS in docs/conf.py", name)
        return
    links = ", ".join(f":doc:`{THEORY[k][1]} </{THEORY[k][0]}>`" for k in keys)
    lines.extend(["", ".. admonition:: Theory", "   :class: theory-link", "", f"   {links}", ""])


def make_figures(app):
    """Compute the figures (cached) before the pages are read."""
    import make_figures as figures
    from sphinx.util import logging

    log = logging.getLogger(__name__)
    written = figures.make_all(figures.DEFAULT_OUT, log=log.info)
    log.info("figures: %d regenerated, %d up to date", len(written),
             len(figures.FIGURES) - len(written))


def _help_text(args):
    import contextlib
    import io

    from refconf.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main(args)
    return buffer.getvalue()


def write_cli_help(app):
    """Write the ``--help`` of ``refconf`` and of each of its commands into
    ``_generated/cli/help.txt`` for the command-line page."""
    import re

    os.environ["COLUMNS"] = "90"  # argparse wraps to the terminal width: make it fixed
    top = _help_text(["--help"])
    commands = re.search(r"\{([\w,-]+)\}", top).group(1).split(",")
    parts = [f"$ refconf --help\n{top}"]
    parts += [f"$ refconf {c} --help\n{_help_text([c, '--help'])}" for c in commands]
    text = "\n".join(parts)
    path = DOCS / "_generated" / "cli" / "help.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _summary_keeping_literals(doc, settings):
    """autosummary's first-sentence summary, or the whole first paragraph when the
    sentence split falls inside an inline literal (``a ... b``), which would leave an
    unterminated literal in the table."""
    summary = _sphinx_extract_summary(doc, settings)
    if summary.count("``") % 2 == 0:
        return summary
    paragraph = []
    for line in doc:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    return " ".join(paragraph)


_sphinx_extract_summary = sphinx.ext.autosummary.extract_summary
sphinx.ext.autosummary.extract_summary = _summary_keeping_literals
# "eq. (2)" and "e.g." do not end a sentence
sphinx.ext.autosummary.WELL_KNOWN_ABBREVIATIONS += (" eq.", "(eq.", " eqs.", "(eqs.", " e.g.", "(e.g.", " cf.")


def primitive_signature(app, what, name, obj, options, signature, return_annotation):
    """An autograd primitive wraps its function as ``f(*args, **kwargs)``; show the
    signature of the function it wraps (``obj.fun``)."""
    import inspect

    raw = getattr(obj, "fun", None)
    if what == "function" and getattr(obj, "_is_autograd_primitive", False) and callable(raw):
        return str(inspect.signature(raw)), return_annotation
    return None


def public_members(module):
    """Public callables of ``module`` in ``__all__`` order (classes and functions; constants
    are described in the module docstrings)."""
    import inspect

    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
    return [(n, getattr(module, n)) for n in names
            if inspect.isclass(getattr(module, n)) or callable(getattr(module, n))]


def own_methods(cls):
    """Public methods and properties defined in ``cls``'s own module (not those that a
    base class such as scikit-learn's ``BaseEstimator`` generates)."""
    import inspect

    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        function = function.fget if isinstance(function, property) else function
        if inspect.isfunction(function) and function.__module__ == cls.__module__:
            names.append(name)
    return names


class ModuleReference(SphinxDirective):
    """``refconf-module MODULE``: the module docstring, a summary table and every public
    class and function of ``MODULE.__all__``, documented by autodoc. With
    ``:skip-exported-by: OTHER``, names that module ``OTHER`` exports are left out."""

    required_arguments = 1
    option_spec: ClassVar[dict] = {"skip-exported-by": directives.unchanged_required}

    def run(self):
        import importlib
        import inspect

        name = self.arguments[0]
        module = importlib.import_module(name)
        members = public_members(module)
        if "skip-exported-by" in self.options:  # documented there already
            other = importlib.import_module(self.options["skip-exported-by"])
            exported = {id(getattr(other, n)) for n in getattr(other, "__all__", [])}
            members = [(n, obj) for n, obj in members if id(obj) not in exported]
        if not members:
            return self.parse_text_to_nodes(f".. automodule:: {name}\n   :no-members:\n")
        lines = [f".. automodule:: {name}", "   :no-members:", "",
                 f".. currentmodule:: {name}", "",
                 ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {n}" for n, _ in members]
        lines.append("")
        for n, obj in members:
            if inspect.isclass(obj):
                own = own_methods(obj)
                lines += [f".. autoclass:: {n}", "   :show-inheritance:"]
                lines += [f"   :members: {', '.join(own)}", ""] if own else [""]
            else:
                lines += [f".. autofunction:: {n}", ""]
        return self.parse_text_to_nodes("\n".join(lines))


def setup(app):
    app.add_directive("refconf-module", ModuleReference)
    # after numpydoc (priority 500) has turned the docstring into reST
    app.connect("autodoc-process-docstring", add_theory_links, priority=600)
    app.connect("autodoc-process-signature", primitive_signature)
    app.connect("builder-inited", make_figures)
    app.connect("builder-inited", write_cli_help)
    return {"parallel_read_safe": True}
