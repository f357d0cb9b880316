"""The report of a table: Markdown next to the paper's numbers, CSV, JSON, written atomically.

:func:`format_markdown` and :func:`format_csv` turn the report of
:func:`~refconf.experiments.table1.reproduce_table1` (the content of ``results.json``)
into ``table1.md`` and ``results.csv``; :func:`write_report` writes the three files, each
through :func:`refconf.storage.atomic_write`.
"""

import csv
import io
import json
import os

import numpy as onp

from ..data import UCI_DATASETS
from ..storage import atomic_write
from .trials import MODELS

__all__ = ["CSV_FIXED_COLUMNS", "OUTPUTS", "PADDING_LABELS", "PAPER_CITATION", "PAPER_TABLE1",
           "format_csv", "format_markdown", "summary", "write_json", "write_report", "write_text"]

PAPER_CITATION = (
    "M. Karami, J. Sohl-Dickstein, L. Dinh, D. Duckworth and D. Schuurmans, \"Symmetric "
    "Convolutional Flow\" (2019), Table 1: average test negative log-likelihood in nats, "
    "error bars 2 standard deviations over 3 trials. The baseline rows are quoted there "
    "from the MAF, TAN, NAF (MAF-DDSF) and FFJORD papers.")
# (mean, 2 std) per model and dataset, as printed in the paper's Table 1.
PAPER_TABLE1 = {
    "made": {"power": (3.08, 0.03), "gas": (-3.56, 0.04), "hepmass": (20.98, 0.02),
             "miniboone": (15.59, 0.50), "bsds300": (-148.85, 0.28)},
    "maf": {"power": (-0.24, 0.01), "gas": (-10.08, 0.02), "hepmass": (17.70, 0.02),
            "miniboone": (11.75, 0.44), "bsds300": (-155.69, 0.28)},
    "tan": {"power": (-0.48, 0.01), "gas": (-11.19, 0.02), "hepmass": (15.12, 0.02),
            "miniboone": (11.01, 0.48), "bsds300": (-157.03, 0.07)},
    "maf_ddsf": {"power": (-0.62, 0.01), "gas": (-11.96, 0.33), "hepmass": (15.09, 0.40),
                 "miniboone": (8.86, 0.15), "bsds300": (-157.73, 0.04)},
    "realnvp": {"power": (-0.17, 0.01), "gas": (-8.33, 0.14), "hepmass": (18.71, 0.02),
                "miniboone": (13.55, 0.49), "bsds300": (-153.28, 1.78)},
    "glow": {"power": (-0.17, 0.01), "gas": (-8.15, 0.40), "hepmass": (18.92, 0.08),
             "miniboone": (11.35, 0.07), "bsds300": (-155.07, 0.03)},
    "ffjord": {"power": (-0.46, 0.01), "gas": (-8.59, 0.12), "hepmass": (14.92, 0.08),
               "miniboone": (10.43, 0.04), "bsds300": (-157.40, 0.19)},
    "conf": {"power": (-0.49, 0.003), "gas": (-10.92, 0.10), "hepmass": (11.46, 0.46),
             "miniboone": (7.03, 0.01), "bsds300": (-164.72, 0.37)},
}
# The paper's CONF numbers for these were obtained on padded data (its section 3.1).
PAPER_PADDED = ("hepmass", "miniboone", "bsds300")
# The names of the paper's rows that refconf does not run.
PAPER_ONLY_NAMES = {"made": "MADE", "tan": "TAN", "maf_ddsf": "MAF-DDSF", "ffjord": "FFJORD"}
PADDING_LABELS = {
    "none": "Padding: none. Odd dimensions use unequal coupling splits (d1 = floor(D/2), "
            "d2 = ceil(D/2)); these NLLs are comparable with each other and with the paper's "
            "baseline rows.",
    "paper": "Padding: paper (NOT comparable). HEPMASS and MINIBOONE have the per-sample mean "
             "appended, BSDS300 the average of its dropped pixel's two neighbours (paper, "
             "section 3.1). The appended value is a function of the others, so the padded "
             "density is singular and the likelihood unbounded: cells marked † are NOT "
             "comparable with unpadded NLLs, the paper's baseline rows included "
             "(validation/padding_caveat.py shows the effect).",
    "noise": "Padding: noise. Odd dimensions get one N(0, 1) column whose exact log-density "
             "is subtracted (refconf.data.noise_padding_log_density), so the NLLs are "
             "comparable with unpadded ones (in expectation an upper bound on the model's "
             "marginal NLL).",
}
NO_PAPER_VALUE = "—"
#: The files a run writes into its output folder (with ``trials/``, and ``models/`` when
#: the models are saved).
OUTPUTS = ("results.json", "results.csv", "table1.md", "config_used.json")


def display_name(model):
    """The name of ``model`` in tables."""
    return MODELS[model].display if model in MODELS else PAPER_ONLY_NAMES[model]


def summary(values):
    """``(mean, two_std)`` of the per-trial test NLLs: ``(None, None)`` if any is not
    finite, no ``two_std`` for a single trial (ddof = 1)."""
    finite = [v for v in values if v is not None]
    if len(finite) < len(values) or not finite:
        return None, None
    two_std = 2.0 * float(onp.std(finite, ddof=1)) if len(finite) > 1 else None
    return float(onp.mean(finite)), two_std


def write_text(path, text):
    """Write ``text`` as UTF-8, atomically."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path, document):
    """Write ``document`` as indented JSON (no NaN), atomically."""
    write_text(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


def write_report(out, report):
    """Write ``results.json``, ``results.csv`` and ``table1.md`` of ``report`` into the
    folder ``out``, each atomically."""
    write_json(os.path.join(out, "results.json"), report)
    write_text(os.path.join(out, "results.csv"), format_csv(report))
    write_text(os.path.join(out, "table1.md"), format_markdown(report))


CSV_FIXED_COLUMNS = ("model", "dataset", "D", "D_model", "padding", "trials", "mean",
                     "two_std")
CSV_TAIL_COLUMNS = ("paper_mean", "paper_two_std", "comparable_with_unpadded")


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)  # repr: round-trips


def format_csv(report):
    """``results.csv``: one row per model and dataset, in the table's order.

    Columns: :data:`CSV_FIXED_COLUMNS` (``D`` the data dimension, ``D_model`` after
    padding, ``padding`` the mode applied), ``nll_trial_1`` ... ``nll_trial_<trials>``
    (test NLL in nats per example), then ``paper_mean``, ``paper_two_std`` and
    ``comparable_with_unpadded``. Empty cells: no value (a single trial has no
    ``two_std``, a non-finite NLL none at all, the paper none for digits and toy sets).
    Floats are written with ``repr``, so they read back exactly as in ``results.json``.
    """
    trials = report["configuration"]["trials"]
    header = [*CSV_FIXED_COLUMNS, *(f"nll_trial_{k + 1}" for k in range(trials)),
              *CSV_TAIL_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for dataset, per_model in report["results"].items():
        info = report["datasets"][dataset]
        for model, cell in per_model.items():
            row = [model, dataset, info["dim"], info["dim_model"], info["padding_applied"],
                   len(cell["test_nll"]), cell["mean"], cell["two_std"], *cell["test_nll"],
                   cell["paper_mean"], cell["paper_two_std"], cell["comparable_with_unpadded"]]
            writer.writerow([_csv_value(v) for v in row])
    return buffer.getvalue()


def _cell(mean, two_std, mark=""):
    if mean is None:
        return "non-finite"
    return (f"{mean:.2f}" if two_std is None else f"{mean:.2f} ± {two_std:.2f}") + mark


def _paper_cell(value):
    if value is None:
        return NO_PAPER_VALUE
    mean, two_std = value
    return f"{mean:.2f} ± {two_std:.{3 if two_std < 0.01 else 2}f}"  # as printed in the paper


def _architecture_cell(model, kwargs):
    entry = MODELS[model]
    if not entry.architecture:
        return entry.summary or (", ".join(f"{k} = {v}" for k, v in kwargs.items()) or "—")
    text = f"{kwargs['steps']} × {kwargs['hidden']}"
    if "activation" in kwargs:
        text += f" {kwargs['activation']}"
    if model == "conf" and "m" in kwargs:
        text += f", m = {kwargs['m']}"
    return text


def _hyperparameter_lines(report):
    """A Markdown table of the resolved hyperparameters, one row per dataset."""
    c = report["configuration"]
    models = c["models"]
    lines = [
        f"Hyperparameters ({c['config_source']}; the paper gives none for CONF, so they "
        f"start from MAF's protocol, see the file's comment"
        + (f"; overridden: {c['overrides']}" if c["overrides"] else "")
        + (f"; per model: {c['model_kwargs']}" if c["model_kwargs"] else "")
        + "). Models: steps × conditioner widths, activation; all values in "
          "config_used.json.",
        "",
        "| dataset | max epochs | batch | learning rate | patience | clip | "
        + " | ".join(display_name(mdl) for mdl in models) + " |",
        "| --- |" + " ---: |" * 5 + " --- |" * len(models),
    ]
    for name in c["datasets"]:
        t = c["hyperparameters"][name]["training"]
        arch = c["hyperparameters"][name]["models"]
        lines.append(f"| {name.upper()} | {t['epochs']} | {t['batch_size']} | "
                     f"{t['learning_rate']:g} | {t['patience']} | {t['clip_norm']} | "
                     + " | ".join(_architecture_cell(mdl, arch[mdl]) for mdl in models) + " |")
    return lines


def _data_line(name, d):
    sub = (f" (first {d['n_train']} of {d['n_train_available']} training rows)"
           if d["n_train"] < d["n_train_available"] else "")
    text = (f"{name.upper()}: D = {d['dim']}, padding {d['padding_applied']}, "
            f"train/val/test {d['n_train']}/{d['n_val']}/{d['n_test']}{sub}")
    if "preprocessing" in d:
        text += f", {d['preprocessing']}"
    if "true_test_nll" in d:
        text += f", true test NLL {d['true_test_nll']:.3f}"
    return text


def _column(name, d):
    dims = f"{d['dim']}→{d['dim_model']}" if d["dim_model"] != d["dim"] else f"{d['dim']}"
    return f"{name.upper()} (D={dims})"


def _table_lines(report):
    """The table: this run's rows, each followed by the paper's, then the paper's other
    rows."""
    datasets = list(report["results"])
    models = report["configuration"]["models"]
    lines = ["| model | " + " | ".join(_column(n, report["datasets"][n]) for n in datasets)
             + " |", "| --- |" + " ---: |" * len(datasets)]
    for model in models:
        cells = [_cell(r["mean"], r["two_std"], "" if r["comparable_with_unpadded"] else " †")
                 for r in (report["results"][n][model] for n in datasets)]
        lines.append(f"| {display_name(model)} (this run) | " + " | ".join(cells) + " |")
        if model in PAPER_TABLE1:
            paper = [_paper_cell(PAPER_TABLE1[model].get(n)) + (
                " ‡" if model == "conf" and n in PAPER_PADDED else "") for n in datasets]
            lines.append(f"| {display_name(model)} (paper) | " + " | ".join(paper) + " |")
    for model, row in PAPER_TABLE1.items():
        if model not in models:
            paper = [_paper_cell(row.get(n)) for n in datasets]
            lines.append(f"| {display_name(model)} (paper) | " + " | ".join(paper) + " |")
    return lines


def _run_lines(report):
    """What the run was (trials, seeds, version) and the footnotes."""
    datasets = list(report["results"])
    c = report["configuration"]
    trials = c["trials"]
    spread = (f"mean ± 2 standard deviations (ddof = 1) over {trials} trials per cell"
              if trials > 1 else "a single trial per cell, no error bar")
    lines = [
        (f"This run: {spread} (model seeds {c['seed']}..{c['seed'] + trials - 1}"
         + (f", data seed {c['data_seed']} for the digits and toy sets"
            if any(n not in UCI_DATASETS for n in datasets) else "")
         + "); early stopping on the validation NLL, best-validation parameters; "
         f"refconf {c['refconf_version']}. {NO_PAPER_VALUE}: no published number."),
    ]
    if any(r["comparable_with_unpadded"] is False
           for per_model in report["results"].values() for r in per_model.values()):
        lines.append("† trained and evaluated on the paper's padded data: singular density, "
                     "NOT comparable with unpadded NLLs.")
    if any(n in PAPER_PADDED for n in datasets):
        lines.append("‡ the paper's CONF numbers for HEPMASS, MINIBOONE and BSDS300 were "
                     "obtained on padded data (its section 3.1).")
    return lines


def format_markdown(report):
    """The Markdown report of a Table 1 run (:func:`reproduce_table1
    <refconf.experiments.table1.reproduce_table1>`): the padding label, a table with this
    run's rows next to the paper's, the hyperparameters and the data."""
    info = report["datasets"]
    lines = [f"# {report['benchmark']}", ""]
    if report.get("note"):
        lines += [f"**Note: {report['note']}**", ""]
    lines += [f"**{report['padding']['label']}**", "", *_table_lines(report), "",
              *_run_lines(report), "", *_hyperparameter_lines(report), "",
              "Data: " + "; ".join(_data_line(n, info[n]) for n in report["results"]) + "."]
    if report.get("datasets_not_found"):
        lines.append(f"Not found under {report['configuration']['data_dir']} (skipped): "
                     + ", ".join(report["datasets_not_found"]) + ".")
    lines += ["", f"Paper: {report['paper']['citation']}", ""]
    return "\n".join(lines)
