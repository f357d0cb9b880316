"""The Table 1 harness end to end on tiny synthetic files in the converted layout
(``DIR/<name>/{train,val,test}.npy``): 1 epoch, 1-2 trials, small models."""

import argparse
import json

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from refconf.baselines import load_flow_model
from refconf.data import UCI_DATASETS
from refconf.reproduce import (
    PAPER_TABLE1,
    dataset_padding,
    format_markdown,
    register,
    reproduce_table1,
)

DIMS = {"power": 4, "hepmass": 5}  # even and odd, like POWER (6) and HEPMASS (21)
SMALL = {"steps": 2, "hidden": (6,), "m": 1, "batch_size": 64, "progress": False,
         "log": lambda line: None}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("uci")
    rng = np.random.default_rng(0)
    for name, dim in DIMS.items():
        (root / name).mkdir()
        mixing = rng.normal(size=(dim, dim))
        for split, n in (("train", 160), ("val", 40), ("test", 50)):
            np.save(root / name / f"{split}.npy", np.tanh(rng.normal(size=(n, dim)) @ mixing))
    return root


def _parser():
    parser = argparse.ArgumentParser(prog="refconf")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run_cli(argv):
    args = _parser().parse_args(argv)
    return args.handler(args)


def test_cli_writes_every_model_and_dataset_with_the_paper_numbers(data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--data-dir", str(data_dir), "--datasets", "power",
                     "hepmass", "--models", "conf", "realnvp", "glow", "maf", "gaussian",
                     "--trials", "2", "--epochs", "1", "--steps", "2", "--hidden", "6",
                     "--m", "1", "--batch-size", "64", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "table1.md"]  # no temp
    report = json.loads((out / "results.json").read_text())
    markdown = (out / "table1.md").read_text()
    assert markdown.strip() in captured.out  # the table is printed
    assert "[hepmass] MAF trial 2: test NLL" in captured.err  # progress lines
    assert report["complete"] is True
    assert report["padding"]["mode"] == "none" and report["padding"]["comparable_with_unpadded"]
    assert "Padding: none" in markdown and "unequal coupling splits" in markdown
    for dataset, dim in DIMS.items():
        assert report["datasets"][dataset]["dim_model"] == dim  # not padded
        for model in ("conf", "realnvp", "glow", "maf", "gaussian"):
            cell = report["results"][dataset][model]
            assert len(cell["test_nll"]) == 2 and all(np.isfinite(cell["test_nll"]))
            assert cell["mean"] == pytest.approx(np.mean(cell["test_nll"]))
            assert cell["two_std"] == pytest.approx(2 * np.std(cell["test_nll"], ddof=1))
            assert [t["seed"] for t in cell["trials"]] == [0, 1]
            expected_paper = PAPER_TABLE1.get(model, {}).get(dataset, (None, None))
            assert (cell["paper_mean"], cell["paper_two_std"]) == expected_paper
        assert f"{dataset.upper()} (D={dim})" in markdown
    for row in ("CONF (this run)", "CONF (paper)", "Real NVP (this run)", "Real NVP (paper)",
                "Glow (this run)", "MAF (this run)", "Gaussian (this run)", "FFJORD (paper)"):
        assert row in markdown
    # the paper's Table 1 (MATH.md section 5): CONF, MAF, Real NVP, Glow, FFJORD
    for number in ("-0.49", "11.46", "-0.24", "17.70", "-0.17", "18.71", "18.92", "-0.46",
                   "14.92"):
        assert number in markdown
    assert report["paper"]["table"]["conf"]["bsds300"] == [-164.72, 0.37]
    assert "Karami" in report["paper"]["citation"]
    # trials differ (different seeds), so the spread is real
    assert report["results"]["power"]["conf"]["two_std"] > 0


def test_gaussian_row_is_the_closed_form_fit_on_the_first_training_rows(data_dir):
    report = reproduce_table1(data_dir, datasets=["hepmass"], models=["gaussian"], trials=1,
                              subsample=100, epochs=1, **SMALL)
    train = np.load(data_dir / "hepmass" / "train.npy")[:100]
    test = np.load(data_dir / "hepmass" / "test.npy")
    expected = -multivariate_normal(train.mean(0), np.cov(train, rowvar=False, bias=True)
                                    + 1e-9 * np.eye(5)).logpdf(test).mean()
    cell = report["results"]["hepmass"]["gaussian"]
    assert cell["test_nll"][0] == pytest.approx(expected, rel=1e-10)
    assert cell["two_std"] is None  # one trial: no error bar
    info = report["datasets"]["hepmass"]
    assert (info["n_train"], info["n_train_available"]) == (100, 160)
    assert "first 100 of 160 training rows" in format_markdown(report)
    assert "a single trial" in format_markdown(report)


def test_paper_padding_is_applied_to_odd_dimensions_and_labelled_not_comparable(data_dir):
    report = reproduce_table1(data_dir, datasets=["power", "hepmass"],
                              models=["conf", "gaussian"], trials=1, epochs=1,
                              padding="paper", **SMALL)
    markdown = format_markdown(report)
    hep, power = report["datasets"]["hepmass"], report["datasets"]["power"]
    assert (hep["dim"], hep["dim_model"], hep["padding_applied"]) == (5, 6, "paper_mean")
    assert not hep["comparable_with_unpadded"]
    assert power["padding_applied"] == "none" and power["comparable_with_unpadded"]
    assert not report["padding"]["comparable_with_unpadded"]
    assert "NOT comparable" in markdown and "HEPMASS (D=5→6)" in markdown
    assert report["results"]["hepmass"]["conf"]["comparable_with_unpadded"] is False
    conf_row = next(line for line in markdown.splitlines() if line.startswith("| CONF (this"))
    assert conf_row.count("†") == 1  # only the padded dataset's cell
    # the singular padded density: the Gaussian's NLL falls far below its unpadded value
    unpadded = reproduce_table1(data_dir, datasets=["hepmass"], models=["gaussian"], trials=1,
                                epochs=1, **SMALL)
    assert (report["results"]["hepmass"]["gaussian"]["mean"]
            < unpadded["results"]["hepmass"]["gaussian"]["mean"] - 5.0)


def test_noise_padding_subtracts_the_noise_log_density(data_dir):
    report = reproduce_table1(data_dir, datasets=["hepmass"], models=["gaussian"], trials=1,
                              epochs=1, padding="noise", seed=3, **SMALL)
    info = report["datasets"]["hepmass"]
    assert (info["dim_model"], info["padding_applied"]) == (6, "noise")
    assert info["comparable_with_unpadded"]
    # recompute: the same noise (seed (3, split)), a Gaussian fit, minus log N(e; 0, 1)
    splits = [np.load(data_dir / "hepmass" / f"{s}.npy") for s in ("train", "val", "test")]
    train, _, test = (np.hstack([x, np.random.default_rng((3, i)).standard_normal((len(x), 1))])
                      for i, x in enumerate(splits))
    gauss = multivariate_normal(train.mean(0), np.cov(train, rowvar=False, bias=True)
                                + 1e-9 * np.eye(6))
    expected = -(gauss.logpdf(test) - norm.logpdf(test[:, -1])).mean()
    assert report["results"]["hepmass"]["gaussian"]["mean"] == pytest.approx(expected, rel=1e-10)
    assert "Padding: noise" in format_markdown(report)


def test_saved_models_reload_with_the_recorded_test_nll(data_dir, tmp_path):
    report = reproduce_table1(data_dir, datasets=["power"], models=["maf", "glow"], trials=1,
                              epochs=1, out=tmp_path, save_models=True, **SMALL)
    test = np.load(data_dir / "power" / "test.npy")
    for model_name in ("maf", "glow"):
        path = tmp_path / "models" / f"power-{model_name}-trial0.npz"
        model, params, metadata = load_flow_model(path)
        nll = -model.build(params).log_prob(test).mean()
        assert nll == pytest.approx(report["results"]["power"][model_name]["test_nll"][0],
                                    rel=1e-12)
        assert metadata["dataset"] == "power"


def test_missing_data_fail_with_one_line_before_any_training(tmp_path, capsys):
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--data-dir", str(tmp_path / "nowhere"),
                     "--datasets", "gas", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("refconf reproduce: error: GAS not found under")
    assert "zenodo" in err[-1].lower() and "train.npy" in err[-1]
    assert not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"trials": 0}, "trials"),
    ({"models": ["conf", "nice"]}, "unknown model"),
    ({"datasets": ["mnist"]}, "unknown dataset"),
    ({"padding": "mean"}, "padding"),
    ({"subsample": 0}, "subsample"),
    ({"epochs": 1.5}, "epochs"),
    ({"models": ["maf"], "model_kwargs": {"maf": {"kind": "circular"}}}, "takes no argument"),
    ({"model_kwargs": {"maf": {"order": "random"}}}, "not among the models"),
])
def test_bad_arguments_are_clear_value_errors(data_dir, kwargs, message):
    settings = dict(datasets=["power"], models=["conf"], trials=1, epochs=1, **SMALL)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        reproduce_table1(data_dir, **settings)


def test_dataset_padding_rules():
    assert [dataset_padding(n, d, "none") for n, d in [("hepmass", 21), ("bsds300", 63)]] == [
        "none", "none"]
    assert dataset_padding("miniboone", 43, "paper") == "paper_mean"
    assert dataset_padding("gas", 8, "paper") == "none"
    assert dataset_padding("hepmass", 21, "noise") == "noise"
    assert dataset_padding("power", 6, "noise") == "none"
    assert set(PAPER_TABLE1["conf"]) == set(UCI_DATASETS)
