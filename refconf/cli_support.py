"""What every ``refconf`` command shares: one argparse style, output-path checks made before
any work, and one error path.

* :class:`Parser` is the argparse class of every (sub)command: each option's help shows its
  default, abbreviations of long options are refused, a usage error is one line, and
  ``--debug`` is accepted everywhere.
* :func:`check_outputs` validates every path a run will write before the run starts.
* :func:`run_handler` runs a command's handler and turns every error a user can cause
  (bad input, file-system errors, memory, Ctrl-C) into one line on standard error and a
  non-zero exit code; ``--debug`` shows the traceback instead.
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import traceback
import warnings

__all__ = ["CommandError", "Interrupted", "OutputPath", "Parser", "available_memory",
           "check_free_memory", "check_free_space", "check_outputs", "dumps_json",
           "is_interrupt", "run_handler"]

#: Exit code of an error the user can fix (bad input, unwritable path, too large a request).
EXIT_USAGE = 2
#: Exit code of an interrupted run (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: Exit code of an unexpected internal error.
EXIT_INTERNAL = 1


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class Interrupted(Exception):
    """Raised by a handler that caught Ctrl-C and knows what to tell the user."""


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option whose default is a value; options without
    one (None, or a flag that is off) say in their help what their absence means."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings or "%(default)" in text):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        return f"{text} (default: {shown})".strip()


class Parser(argparse.ArgumentParser):
    """The argument parser of every ``refconf`` (sub)command.

    A usage error prints one line (``refconf train: error: ...; see refconf train --help``)
    and exits with code 2; long options cannot be abbreviated (a resumed run must see which
    flags were given); ``--debug`` is an option of every command.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show the full traceback of an error instead of one line")

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)}; "
                              f"see {self.prog} --help\n")


def _one_line(text):
    return " ".join(str(text).split())


# --- output paths -----------------------------------------------------------------------


class OutputPath:
    """A path a command will write: ``flag`` names it in messages; ``suffixes`` are the
    allowed endings (empty for a folder, which ``folder=True`` marks)."""

    def __init__(self, flag, path, suffixes=(), folder=False):
        self.flag, self.suffixes, self.folder = flag, suffixes, folder
        self.path = None if path is None else os.fspath(path)

    @property
    def resolved(self):
        return os.path.realpath(self.path)


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)  # hard links
    return False


def _check_writable_folder(flag, folder):
    """Raise unless a file can be created in ``folder`` (tried, so that read-only file
    systems and permissions are both caught, whoever runs the command)."""
    if not os.path.exists(folder):
        raise CommandError(f"{flag}: folder {folder} does not exist; create it first")
    if not os.path.isdir(folder):
        raise CommandError(f"{flag}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".refconf-probe.", dir=folder)
    except OSError as err:
        raise CommandError(f"{flag}: cannot write in folder {folder} "
                           f"({err.strerror or err})") from None
    os.close(fd)
    os.remove(probe)


def _check_one(out):
    path = out.path
    if not path.strip():
        raise CommandError(f"{out.flag}: empty path; expected a "
                           f"{'folder' if out.folder else 'file'} name")
    if out.folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise CommandError(f"{out.flag} {path}: is a file; expected a folder (it would "
                               "be created)")
        # the nearest existing ancestor must take the new folders
        parent = os.path.abspath(path)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        _check_writable_folder(out.flag, parent)
        return
    if not path.lower().endswith(out.suffixes):
        raise CommandError(f"{out.flag} {path}: expected a file name ending in "
                           f"{' or '.join(out.suffixes)}")
    if os.path.isdir(path):
        raise CommandError(f"{out.flag} {path}: is a folder; expected a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CommandError(f"{out.flag} {path}: the file exists and is read-only")
    _check_writable_folder(out.flag, os.path.dirname(os.path.abspath(path)))


def check_outputs(outputs, inputs=()):
    """Validate every path a command will write, before any work.

    Each output's folder must exist and take a new file, the path must not be a folder and
    must end in one of its suffixes, and no output may be the same file as an input or as
    another output (resolved paths and hard links are compared).

    Parameters
    ----------
    outputs : iterable of OutputPath or None
        None entries (an option not given) are skipped.
    inputs : iterable of (str, path or None)
        ``(flag, path)`` of every file the command reads; entries that are not files
        (built-in data sets) are skipped.

    Raises
    ------
    CommandError
        Naming the option, the path and what was expected.
    """
    outputs = [out for out in outputs if out is not None and out.path is not None]
    inputs = [(flag, os.fspath(p)) for flag, p in inputs if p is not None and os.path.isfile(p)]
    for i, out in enumerate(outputs):
        _check_one(out)
        for flag, path in inputs:
            if _same_file(out.path, path):
                raise CommandError(f"{out.flag} {out.path} is the input {flag}; writing it "
                                   "would destroy it. Choose another file")
        for other in outputs[:i]:
            if out.resolved == other.resolved:
                raise CommandError(f"{out.flag} and {other.flag} are the same file "
                                   f"({out.path}); each output needs its own file")


def check_free_space(path, needed, what):
    """Refuse up front when the disk of ``path`` has fewer than ``needed`` bytes free."""
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise CommandError(f"{what} needs {_size(needed)} on the disk of {folder}, which has "
                           f"{_size(free)} free")


def available_memory():
    """Bytes of memory available to a new allocation (``MemAvailable`` of
    ``/proc/meminfo``, else the free physical pages), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_free_memory(needed, what):
    """Refuse up front when ``needed`` bytes exceed the available memory."""
    free = available_memory()
    if free is not None and needed > free:
        raise CommandError(f"{what} needs {_size(needed)} of memory, but only {_size(free)} "
                           "are available")


def _size(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


# --- JSON ---------------------------------------------------------------------------------


def dumps_json(record, **kwargs):
    """``json.dumps`` that always gives valid JSON: a NaN or infinite float becomes
    ``null`` and is explained in a ``"non_finite"`` entry (``{key: "inf" | "-inf" |
    "nan"}``) of the top-level dict."""
    non_finite = {}

    def clean(value, key):
        if isinstance(value, float) and not math.isfinite(value):
            non_finite[key] = str(float(value))
            return None
        if isinstance(value, dict):
            return {k: clean(v, k if key is None else f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(record, None)
    if non_finite:
        cleaned["non_finite"] = non_finite
    return json.dumps(cleaned, allow_nan=False, **kwargs)


# --- the error path -----------------------------------------------------------------------


def is_interrupt(err):
    """Whether ``err`` is, or was caused while handling, a KeyboardInterrupt (compiled code
    may turn Ctrl-C into a SystemError whose context is the interrupt)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _reason(err):
    if isinstance(err, MemoryError):
        return f"out of memory: {_one_line(err) or 'a requested size is too large'}"
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    return _one_line(err)


def _show_warning(prog):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {_one_line(message)}", file=sys.stderr)
    return show


def run_handler(args, prog):
    """Run ``args.handler(args)``; return its exit code, or print one line on standard
    error and return 2 (a user error), 130 (Ctrl-C) or 1 (an internal error).

    A handler may raise :class:`Interrupted` with the message to show on Ctrl-C (where the
    checkpoint is, how to resume). With ``args.debug`` every error is re-raised, so Python
    shows the traceback.
    """
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning(prog)
            code = args.handler(args)
        return 0 if code is None else code
    except BaseException as err:  # every error ends here, by design
        if debug or isinstance(err, SystemExit):
            raise
        if isinstance(err, Interrupted) or is_interrupt(err):
            detail = f"; {_one_line(err)}" if isinstance(err, Interrupted) else ""
            print(f"{prog}: interrupted{detail}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(err, (CommandError, ValueError, OSError, MemoryError,
                            FloatingPointError)):
            print(f"{prog}: error: {_reason(err)}", file=sys.stderr)
            return EXIT_USAGE
        where = traceback.extract_tb(err.__traceback__)[-1]
        print(f"{prog}: internal error: {type(err).__name__}: {_reason(err)} (at "
              f"{os.path.basename(where.filename)}:{where.lineno}); rerun with --debug for "
              "the traceback and please report it", file=sys.stderr)
        return EXIT_INTERNAL
