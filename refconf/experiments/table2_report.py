"""The report of Table 2: Markdown next to the paper's numbers (quoted), and CSV.

The paper's Table 2 (:data:`PAPER_TABLE2`) gives the test ``-ELBO`` and the
importance-sampled NLL in nats on statically binarised MNIST and Caltech 101 Silhouettes;
its baseline rows are quoted there from van den Berg et al. (2018), whose protocol it
follows.
"""

import csv
import io

__all__ = ["OUTPUTS", "PAPER_CITATION", "PAPER_TABLE2", "format_csv", "format_markdown"]

#: The files a run writes into its output folder (with ``trials/``).
OUTPUTS = ("results.json", "results.csv", "table2.md", "config_used.json")
SYLVESTER = ("R. van den Berg, L. Hasenclever, J. M. Tomczak and M. Welling, \"Sylvester "
             "Normalizing Flows for Variational Inference\" (UAI 2018)")
PAPER_CITATION = (
    "M. Karami, J. Sohl-Dickstein, L. Dinh, D. Duckworth and D. Schuurmans, \"Symmetric "
    "Convolutional Flow\" (2019), Table 2: test -ELBO and NLL in nats, error bars 2 standard "
    "deviations over 3 trials. Its VAE, planar, IAF and O-SNF rows are quoted there from "
    f"{SYLVESTER}.")
# model -> dataset -> ((-ELBO mean, 2 std), (NLL mean, 2 std)); None: no error bar printed.
PAPER_TABLE2 = {
    "vae": {"mnist": ((86.55, 0.06), (82.14, 0.07)), "caltech": ((110.80, 0.46), (99.62, 0.74))},
    "planar": {"mnist": ((86.06, 0.31), (81.91, 0.22)),
               "caltech": ((109.66, 0.42), (98.53, 0.68))},
    "iaf": {"mnist": ((84.20, 0.17), (80.79, 0.12)), "caltech": ((111.58, 0.38), (99.92, 0.30))},
    "osnf_16_32": {"mnist": ((83.32, 0.06), (80.22, 0.03)),
                   "caltech": ((106.08, 0.39), (94.61, 0.83))},
    "osnf": {"mnist": ((84.83, None), (80.94, None)),
             "caltech": ((109.37, 0.94), (97.78, 0.47))},
    "conf": {"mnist": ((83.79, None), (80.71, None)),
             "caltech": ((104.09, 1.03), (94.56, 0.29))},
}
DISPLAY = {"vae": "VAE", "planar": "Planar", "iaf": "IAF", "osnf_16_32": "O-SNF (F=16, M=32)",
           "osnf": "O-SNF (F=4, M=M)", "conf": "CONF (F=4, m=m)"}
PAPER_DISPLAY = {**DISPLAY, "osnf": "O-SNF (F=4, M=8)", "conf": "CONF (F=4, m=8)"}
SOURCE = {"conf": "Karami et al. 2019"}
NONE = "—"


def _display(model, hyper):
    return (DISPLAY[model].replace("F=4", f"F={hyper['steps']}")
            .replace("M=M", f"M={hyper['bottleneck']}").replace("m=m", f"m={hyper['m']}"))


def _cell(mean, two_std):
    if mean is None:
        return "non-finite"
    return f"{mean:.2f}" if two_std is None else f"{mean:.2f} ± {two_std:.2f}"


def _paper_cell(value):
    return NONE if value is None else _cell(*value)


def _architecture(h, d):
    if h["architecture"] == "gated_conv":
        return ("the gated-convolution encoder and decoder of van den Berg et al. (256 "
                "features)")
    return (f"MLP encoder {d['pixels']}→{'→'.join(map(str, h['hidden']))} and decoder the "
            "reverse (ReLU; not the gated convolutions of van den Berg et al.)")


def _protocol_lines(report):
    c = report["configuration"]
    lines = ["Protocol of this run:", ""]
    for name in report["results"]:
        h, d = c["hyperparameters"][name], report["datasets"][name]
        sub = (f" (first {d['n_train']} of {d['n_train_available']} training rows)"
               if d["n_train"] < d["n_train_available"] else "")
        lines.append(
            f"- {name.upper()}: {d['binarisation']}; train/val/test {d['n_train']}/"
            f"{d['n_val']}/{d['n_test']}{sub}; NLL by importance sampling with S = "
            f"{h['samples']} samples from q(z|x); {_architecture(h, d)}, Bernoulli "
            f"likelihood, latent size {h['latent']}; flow count F = {h['steps']} (CONF: "
            f"m = {h['m']} circular "
            f"(DFT) convolution layers per step, conditioner input {c['conditioner_input']}, "
            f"one hidden layer of {h['hidden'][-1]}, exp spectrum, bounded outputs; O-SNF: M = "
            f"{h['bottleneck']}, Björck orthogonalisation); {h['optimizer'].capitalize()} lr "
            f"{h['learning_rate']:g}, gradients clipped to norm {h['clip_norm']}, "
            f"batch {h['batch_size']}, KL warm-up {h['warmup']} epochs, at most "
            f"{h['epochs']} epochs, early stopping on the validation -ELBO with patience "
            f"{h['patience']}.")
    trials = c["trials"]
    spread = (f"mean ± 2 standard deviations (ddof = 1) over {trials} trials"
              if trials > 1 else "a single trial, no error bar")
    lines += ["", (f"This run: {spread} (seeds {c['seed']}..{c['seed'] + trials - 1}); "
              f"refconf {c['refconf_version']}; {report['wall_seconds']:.0f} s. {NONE}: no "
              "published number.")]
    return lines


def _table_lines(report):
    datasets = list(report["results"])
    hyper = report["configuration"]["hyperparameters"]
    header = "| model | " + " | ".join(f"{n.upper()} -ELBO | {n.upper()} NLL" for n in datasets)
    lines = [header + " |", "| --- |" + " ---: | ---: |" * len(datasets)]
    first = hyper[datasets[0]]
    for model in report["configuration"]["models"]:
        cells = []
        for name in datasets:
            r = report["results"][name][model]
            cells += [_cell(r["neg_elbo_mean"], r["neg_elbo_two_std"]),
                      _cell(r["nll_mean"], r["nll_two_std"])]
        lines.append(f"| {_display(model, first)} (this run) | " + " | ".join(cells) + " |")
    return lines


def _paper_lines():
    """The paper's Table 2 as printed, each row with its source."""
    lines = ["The paper's Table 2 (quoted; the paper reports no digits column):", "",
             "| model (source) | MNIST -ELBO | MNIST NLL | CALTECH -ELBO | CALTECH NLL |",
             "| --- |" + " ---: |" * 4]
    for model, row in PAPER_TABLE2.items():
        cells = [_paper_cell(value) for name in ("mnist", "caltech") for value in row[name]]
        source = SOURCE.get(model, "quoted from van den Berg et al. 2018")
        lines.append(f"| {PAPER_DISPLAY[model]} ({source}) | " + " | ".join(cells) + " |")
    return lines


def format_markdown(report):
    """``table2.md``: the table, this run's rows then the paper's (quoted, with their
    sources), and every protocol setting."""
    lines = [f"# {report['benchmark']}", ""]
    if report.get("note"):
        lines += [f"**Note: {report['note']}**", ""]
    lines += [*_table_lines(report), "", *_paper_lines(), "", *_protocol_lines(report), "",
              f"Paper (quoted): {PAPER_CITATION}", ""]
    return "\n".join(lines)


CSV_COLUMNS = ("model", "dataset", "trials", "neg_elbo_mean", "neg_elbo_two_std", "nll_mean",
               "nll_two_std", "samples", "latent", "flows", "conditioner_input")


def format_csv(report):
    """``results.csv``: one row per model and dataset: :data:`CSV_COLUMNS`, then
    ``neg_elbo_trial_k`` and ``nll_trial_k`` per trial, then the paper's values
    (``paper_neg_elbo``, ``paper_neg_elbo_two_std``, ``paper_nll``, ``paper_nll_two_std``;
    empty where it has none). Floats are written with ``repr``."""
    c = report["configuration"]
    trials = c["trials"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"neg_elbo_trial_{k + 1}" for k in range(trials)),
                     *(f"nll_trial_{k + 1}" for k in range(trials)), "paper_neg_elbo",
                     "paper_neg_elbo_two_std", "paper_nll", "paper_nll_two_std"])
    for name, per_model in report["results"].items():
        h = c["hyperparameters"][name]
        for model, r in per_model.items():
            paper = r["paper"] or ((None, None), (None, None))
            row = [model, name, len(r["nll"]), r["neg_elbo_mean"], r["neg_elbo_two_std"],
                   r["nll_mean"], r["nll_two_std"], h["samples"], h["latent"],
                   0 if model == "vae" else h["steps"], c["conditioner_input"],
                   *r["neg_elbo"], *r["nll"], *paper[0], *paper[1]]
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                             for v in row])
    return buffer.getvalue()
