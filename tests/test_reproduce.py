"""The Table 1 harness end to end on tiny synthetic files in the converted layout
(``DIR/<name>/{train,val,test}.npy``), on the digits and a toy set: 1 epoch, 1-2 trials,
small models; the config file's loading, precedence and validation; the CSV against the
JSON."""

import csv
import json

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

import refconf
from refconf.baselines import load_flow_model
from refconf.bijectors import Logit
from refconf.cli import main as cli_main
from refconf.data import UCI_DATASETS, load_digits
from refconf.data.digits import load_digits_logit
from refconf.experiments import (
    PAPER_TABLE1,
    TABLE1_DATASETS,
    dataset_padding,
    format_markdown,
    load_config,
    reproduce_table1,
    resolve_hyperparameters,
)

OUTPUTS = ["config_used.json", "results.csv", "results.json", "table1.md", "trials"]
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


def _run_cli(argv):
    return cli_main(argv)


def test_cli_writes_every_model_and_dataset_with_the_paper_numbers(data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--data-dir", str(data_dir), "--datasets", "power",
                     "hepmass", "--models", "conf", "realnvp", "glow", "maf", "gaussian",
                     "--trials", "2", "--epochs", "1", "--steps", "2", "--hidden", "6",
                     "--m", "1", "--batch-size", "64", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS  # no temporary files left
    # one result file per trial, named by dataset, model and seed
    assert sorted(p.name for p in (out / "trials").iterdir()) == sorted(
        f"{d}-{m}-seed{s}.json" for d in DIMS for m in ("conf", "realnvp", "glow", "maf",
                                                        "gaussian") for s in (0, 1))
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
    # the paper's Table 1 (``docs/tutorials/uci-table1.md``): CONF, MAF, Real NVP, Glow, FFJORD
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
        path = tmp_path / "models" / f"power-{model_name}-seed0.npz"
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


# --- CSV against JSON -------------------------------------------------------------------


def _csv_float(text):
    return None if text == "" else float(text)


def test_csv_rows_match_the_json_results_exactly(data_dir, tmp_path):
    report = reproduce_table1(data_dir, datasets=["power", "hepmass"],
                              models=["conf", "gaussian"], trials=2, epochs=1, padding="paper",
                              out=tmp_path, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == OUTPUTS
    with open(tmp_path / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert header == ["model", "dataset", "D", "D_model", "padding", "trials", "mean",
                      "two_std", "nll_trial_1", "nll_trial_2", "paper_mean", "paper_two_std",
                      "comparable_with_unpadded"]
    assert [(r["dataset"], r["model"]) for r in rows] == [
        ("power", "conf"), ("power", "gaussian"), ("hepmass", "conf"), ("hepmass", "gaussian")]
    saved = json.loads((tmp_path / "results.json").read_text())
    for row in rows:
        cell = saved["results"][row["dataset"]][row["model"]]
        info = saved["datasets"][row["dataset"]]
        assert (int(row["D"]), int(row["D_model"]), row["padding"]) == (
            info["dim"], info["dim_model"], info["padding_applied"])
        assert int(row["trials"]) == 2
        # repr-written floats read back bit for bit
        assert _csv_float(row["mean"]) == cell["mean"]
        assert _csv_float(row["two_std"]) == cell["two_std"]
        assert [_csv_float(row["nll_trial_1"]), _csv_float(row["nll_trial_2"])] == cell["test_nll"]
        assert (_csv_float(row["paper_mean"]), _csv_float(row["paper_two_std"])) == (
            cell["paper_mean"], cell["paper_two_std"])
        assert row["comparable_with_unpadded"] == str(cell["comparable_with_unpadded"]).lower()
    hep_conf = rows[2]
    assert (hep_conf["D"], hep_conf["D_model"], hep_conf["padding"]) == ("5", "6", "paper_mean")
    assert hep_conf["comparable_with_unpadded"] == "false"
    assert (hep_conf["paper_mean"], hep_conf["paper_two_std"]) == ("11.46", "0.46")
    assert rows[1]["paper_mean"] == ""  # no published Gaussian row
    assert saved == json.loads(json.dumps(report))  # the file is the returned report
    assert json.loads((tmp_path / "config_used.json").read_text()) == saved["configuration"]


# --- the config file ---------------------------------------------------------------------


def test_shipped_config_starts_from_mafs_protocol_and_says_so():
    config = load_config()
    text = config["comment"] + " ".join(config["source"])
    assert "gives no" in text and "MAF" in text and "Papamakarios" in text
    assert set(config["datasets"]) == set(TABLE1_DATASETS)
    for name in UCI_DATASETS:
        h = resolve_hyperparameters(config, name, ["conf", "maf", "realnvp", "glow",
                                                   "gaussian"])
        assert {k: h["training"][k] for k in ("batch_size", "learning_rate", "patience")} == {
            "batch_size": 100, "learning_rate": 1e-4, "patience": 30}
        assert h["models"]["maf"]["steps"] == h["models"]["conf"]["steps"] == 5
        assert h["models"]["gaussian"] == {"ridge": 1e-9}  # no architecture for the Gaussian
    width = {name: resolve_hyperparameters(config, name, ["maf"])["models"]["maf"]["hidden"]
             for name in UCI_DATASETS}
    assert width == {"power": [100, 100], "gas": [100, 100], "hepmass": [512, 512],
                     "miniboone": [512, 512], "bsds300": [1024, 1024]}
    assert resolve_hyperparameters(config, "gas", ["maf"])["models"]["maf"]["activation"] == "tanh"
    assert resolve_hyperparameters(config, "power", ["maf"])["models"]["maf"]["activation"] == "relu"
    digits = resolve_hyperparameters(config, "digits", ["conf"])
    assert digits["data"] == {"logit_lambda": 0.05}
    toy = resolve_hyperparameters(config, "toy:rings", ["conf"])
    assert set(toy["data"]) == {"n_train", "n_val", "n_test"}


def test_user_config_is_merged_and_flags_win(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({
        "defaults": {"models": {"maf": {"steps": 3}}},
        "datasets": {"power": {"training": {"epochs": 7, "patience": None},
                               "architecture": {"steps": 4},
                               "models": {"conf": {"m": 3}}}}}))
    config = load_config(path)
    power = resolve_hyperparameters(config, "power", ["conf", "maf"])
    gas = resolve_hyperparameters(config, "gas", ["conf", "maf"])
    assert power["training"]["epochs"] == 7 and power["training"]["patience"] is None
    assert power["training"]["batch_size"] == 100  # the shipped value survives the merge
    assert power["models"]["conf"]["m"] == 3 and gas["models"]["conf"]["m"] == 2
    # later levels win: the dataset's architecture over the defaults' model entry
    assert power["models"]["maf"]["steps"] == 4 and gas["models"]["maf"]["steps"] == 3
    assert gas["models"]["conf"]["steps"] == 5 and gas["training"]["epochs"] == 1000
    flags = resolve_hyperparameters(config, "power", ["conf", "maf", "gaussian"],
                                    {"epochs": 2, "steps": 1, "hidden": (9,), "m": 1,
                                     "learning_rate": None},
                                    {"maf": {"activation": "tanh"}})
    assert flags["training"]["epochs"] == 2 and flags["training"]["learning_rate"] == 1e-4
    assert flags["models"]["conf"] == {**power["models"]["conf"], "steps": 1, "hidden": [9],
                                       "m": 1}
    assert flags["models"]["maf"]["activation"] == "tanh" and "m" not in flags["models"]["maf"]
    assert flags["models"]["gaussian"] == {"ridge": 1e-9}


@pytest.mark.parametrize("document, message", [
    ({"bogus": 1}, r"user config: unknown key\(s\) \['bogus'\]"),
    ({"comment": 3}, "user config.comment: expected a string"),
    ({"datasets": {"mnist": {}}}, r"user config.datasets: unknown key\(s\) \['mnist'\]"),
    ({"datasets": {"power": {"training": {"epoch": 3}}}},
     r"datasets.power.training: unknown key\(s\) \['epoch'\]"),
    ({"defaults": {"training": {"learning_rate": -1}}}, "learning_rate must be a finite number"),
    ({"defaults": {"training": {"epochs": 2.5}}}, "epochs must be a positive integer"),
    ({"defaults": {"architecture": {"hidden": []}}}, "hidden must be a non-empty list"),
    ({"datasets": {"gas": {"models": {"maf": {"kind": "circular"}}}}},
     "datasets.gas.models.maf: maf takes no argument"),
    ({"datasets": {"gas": {"models": {"conf": {"activation": "sigmoid"}}}}},
     "datasets.gas.models.conf: activation must be one of"),
    ({"datasets": {"gas": {"models": {"nice": {}}}}}, r"unknown key\(s\) \['nice'\]"),
    ({"defaults": {"models": {"conf": {"random_state": 1}}}}, "cannot be configured"),
    ({"defaults": {"models": {"gaussian": {"steps": 3}}}}, "Gaussian has no architecture"),
    ({"datasets": {"power": {"data": {"n_train": 5}}}},
     r"datasets.power: unknown key\(s\) \['data'\]"),
    ({"datasets": {"toy:rings": {"data": {"n_train": 1}}}}, "n_train must be an integer >= 2"),
    ({"datasets": {"digits": {"data": {"logit_lambda": 0.7}}}}, "logit_lambda must be"),
    ({"datasets": {"digits": {"data": {"n_train": 10}}}}, r"unknown key\(s\) \['n_train'\]"),
])
def test_bad_config_is_a_value_error_saying_where(document, message):
    with pytest.raises(ValueError, match=message):
        load_config(document)


def test_config_file_that_is_not_a_json_object(tmp_path):
    broken, listed = tmp_path / "broken.json", tmp_path / "list.json"
    broken.write_text('{"defaults": ')
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_config(broken)
    with pytest.raises(ValueError, match="expected a JSON object at the top"):
        load_config(listed)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.json")


def test_cli_bad_config_fails_in_one_line_before_any_output(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"datasets": {"digits": {"training": {"lr": 0.1}}}}))
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--datasets", "digits", "--config", str(path),
                     "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert err[-1].startswith("refconf reproduce: error: config file")
    assert "datasets.digits.training: unknown key(s) ['lr']" in err[-1]


# --- datasets without download -----------------------------------------------------------


def test_load_digits_logit_is_the_logit_of_the_digits_splits():
    lam = 0.1
    got = load_digits_logit(random_state=3, lam=lam, test_fraction=0.25)
    for (z, log_det), x in zip(got, load_digits(random_state=3, test_fraction=0.25)):
        p = lam + (1 - 2 * lam) * x
        np.testing.assert_allclose(z, np.log(p / (1 - p)), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            log_det, np.sum(np.log(1 - 2 * lam) - np.log(p) - np.log(1 - p), axis=1),
            rtol=1e-12)
    assert len(got[2][0]) == round(0.25 * 1797)


def test_digits_and_toy_end_to_end_without_data_dir(tmp_path, capsys):
    user = tmp_path / "small.json"
    user.write_text(json.dumps({"datasets": {
        "toy:two_moons": {"training": {"epochs": 4},
                          "data": {"n_train": 300, "n_val": 100, "n_test": 200}}}}))
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--datasets", "digits", "toy:two_moons",
                     "--models", "conf", "maf", "gaussian", "--trials", "2",
                     "--subsample", "200", "--epochs", "1", "--steps", "1", "--hidden", "4",
                     "--m", "1", "--config", str(user), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    report = json.loads((out / "results.json").read_text())
    used = json.loads((out / "config_used.json").read_text())
    markdown = (out / "table1.md").read_text()
    assert markdown.strip() in captured.out
    assert used == report["configuration"]
    assert used["refconf_version"] == refconf.__version__ and used["data_dir"] is None
    assert used["trial_seeds"] == [0, 1] and used["padding"] == "none"
    toy = used["hyperparameters"]["toy:two_moons"]
    assert toy["training"]["epochs"] == 1  # the flag beats the user file's 4
    assert toy["data"] == {"n_train": 300, "n_val": 100, "n_test": 200}
    assert toy["models"]["conf"]["hidden"] == [4] and toy["models"]["conf"]["m"] == 1
    assert used["hyperparameters"]["digits"]["training"]["learning_rate"] == 1e-3  # shipped

    digits, moons = report["datasets"]["digits"], report["datasets"]["toy:two_moons"]
    assert (digits["dim"], digits["n_train"], digits["n_train_available"]) == (64, 200, 1258)
    assert (moons["dim"], moons["n_train"], moons["n_val"], moons["n_test"]) == (2, 200, 100, 200)
    for name in ("digits", "toy:two_moons"):
        for model in ("conf", "maf", "gaussian"):
            cell = report["results"][name][model]
            assert len(cell["test_nll"]) == 2 and all(np.isfinite(cell["test_nll"]))
            assert cell["paper_mean"] is None and cell["paper_two_std"] is None
    assert report["results"]["digits"]["conf"]["two_std"] > 0  # seeds differ

    # digits: the Gaussian row recomputed on the (0, 1) scale, logit log-det included
    logit = Logit(0.05)
    train, _, test = load_digits(random_state=0)
    z_train, z_test = logit.forward(train[:200])[0], logit.forward(test)[0]
    gauss = multivariate_normal(z_train.mean(0), np.cov(z_train, rowvar=False, bias=True)
                                + 1e-9 * np.eye(64))
    expected = -(gauss.logpdf(z_test) + logit.forward(test)[1]).mean()
    assert report["results"]["digits"]["gaussian"]["mean"] == pytest.approx(expected, rel=1e-9)
    assert abs(expected + gauss.logpdf(z_test).mean()) > 10  # the log-det matters
    # toy: a Gaussian fit cannot beat the true density on the same test points
    assert report["results"]["toy:two_moons"]["gaussian"]["mean"] > moons["true_test_nll"] + 0.2

    assert "DIGITS (D=64)" in markdown and "TOY:TWO_MOONS (D=2)" in markdown
    assert "| CONF (paper) | — | — |" in markdown and "| FFJORD (paper) | — | — |" in markdown
    assert "the paper gives none for CONF" in markdown and "true test NLL" in markdown
    assert "logit with lambda 0.05" in markdown
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["dataset"], r["model"]) for r in rows][:3] == [
        ("digits", "conf"), ("digits", "maf"), ("digits", "gaussian")]
    assert all(r["paper_mean"] == "" for r in rows)


def test_default_datasets_are_every_dataset_found(data_dir):
    lines = []
    report = reproduce_table1(data_dir, models=["gaussian"], trials=1, subsample=50,
                              progress=False, log=lines.append, note="a smoke test")
    found = list(DIMS) + ["digits", "toy:two_moons", "toy:checkerboard", "toy:rings",
                          "toy:eight_gaussians"]
    assert list(report["results"]) == [n for n in TABLE1_DATASETS if n in found]
    assert report["datasets_not_found"] == ["gas", "miniboone", "bsds300"]
    assert any(line.startswith("skipping gas: GAS not found under") for line in lines)
    markdown = format_markdown(report)
    assert "Not found under" in markdown and "gas, miniboone, bsds300" in markdown
    assert "**Note: a smoke test**" in markdown


def test_mafs_datasets_need_a_data_dir():
    with pytest.raises(ValueError, match=r"\['power'\] need --data-dir"):
        reproduce_table1(datasets=["digits", "power"], models=["gaussian"], trials=1,
                         progress=False, log=lambda line: None)
