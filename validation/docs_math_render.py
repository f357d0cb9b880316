"""Claim: the built documentation typesets its equations offline, in a real browser.

The HTML pages load MathJax from their own ``_static/mathjax`` folder (shipped with the
docs build from the npm package pinned in ``docs/package.json``), never from the network.
This script opens a theory page of the built HTML in headless Chromium from a ``file://``
URL, with every host name made unresolvable (so a page that needed the network would show
raw TeX), lets MathJax run, and reads the resulting DOM.

It exits non-zero unless

- the page has at least ``--min-equations`` typeset equations (``mjx-container``
  elements) and none of them is a MathJax error (``merror``);
- no raw TeX delimiters are left in the text (``\\(``, ``\\[``, ``$$``);
- the numbered display equations carry their numbers (``(1.1)`` style labels).

It also saves a screenshot of the page, for a person to look at, and a JSON summary.

Run (after ``make docs``; Chromium from the distribution, e.g. ``apt-get install
chromium``): ``python validation/docs_math_render.py [--page theory/symmetric-convolution.html]
[--out validation/out]``.
"""

import argparse
import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_HTML = ROOT / "docs" / "_build" / "html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser(name=None):
    """Path of a Chromium-family browser (``name`` if given), or None."""
    for candidate in ([name] if name else BROWSERS):
        path = shutil.which(candidate)
        if path:
            return path
    return None


def _chromium(browser, url, *extra, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        argv = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
                f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                "--window-size=1400,2400", *extra, url]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{browser} exited with {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def inspect_dom(dom):
    """Counts of typeset equations, MathJax errors, leftover TeX and equation numbers."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(
        r"<(script|style|mjx-assistive-mml)[^>]*>.*?</\1>", " ", dom, flags=re.DOTALL)))
    return {
        "typeset": len(re.findall(r"<mjx-container\b", dom)),
        "display": len(re.findall(r"<mjx-container[^>]*display=\"true\"", dom)),
        "errors": len(re.findall(r"<mjx-merror\b", dom)),
        "raw_tex": len(re.findall(r"\\\(|\\\[|\$\$", text)),
        "numbers": len(re.findall(r'<span class="eqno">\(\d+(\.\d+)*\)', dom)),
    }


def check(summary, min_equations):
    """The failed conditions of a summary (empty when the page passed)."""
    failures = []
    if summary["typeset"] < min_equations:
        failures.append(f"only {summary['typeset']} typeset equations, expected "
                        f">= {min_equations}")
    if summary["errors"]:
        failures.append(f"{summary['errors']} MathJax errors")
    if summary["raw_tex"]:
        failures.append(f"{summary['raw_tex']} raw TeX delimiters left in the text")
    if summary["numbers"] < 1:
        failures.append("no numbered equation")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=pathlib.Path, default=DEFAULT_HTML,
                        help="built HTML folder (default: docs/_build/html)")
    parser.add_argument("--page", default="theory/symmetric-convolution.html",
                        help="page to render, relative to --html")
    parser.add_argument("--browser", help="browser executable (default: chromium on PATH)")
    parser.add_argument("--min-equations", type=int, default=10,
                        help="fewest typeset equations the page must show")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "validation" / "out",
                        help="folder of the screenshot and the JSON summary")
    args = parser.parse_args(argv)
    page = args.html / args.page
    if not page.is_file():
        print(f"no page {page}: build the docs first (make docs)", file=sys.stderr)
        return 2
    browser = find_browser(args.browser)
    if browser is None:
        print("no Chromium found (install the distribution's chromium package)",
              file=sys.stderr)
        return 2
    url = page.resolve().as_uri()
    summary = inspect_dom(_chromium(browser, url, "--dump-dom"))
    args.out.mkdir(parents=True, exist_ok=True)
    screenshot = args.out / "docs_math_render.png"
    _chromium(browser, url, f"--screenshot={screenshot}")
    failures = check(summary, args.min_equations)
    summary.update(page=args.page, browser=browser, screenshot=os.fspath(screenshot),
                   failures=failures, passed=not failures)
    (args.out / "docs_math_render.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{args.page}: {summary['typeset']} equations typeset ({summary['display']} "
          f"display, {summary['numbers']} numbered), {summary['errors']} MathJax errors, "
          f"{summary['raw_tex']} raw TeX delimiters; screenshot {screenshot}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
