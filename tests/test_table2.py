"""``refconf reproduce table2`` end to end on small files in the released formats (MNIST
``.amat``, Caltech ``.mat``) and on the digits: tiny models, 1-2 epochs."""

import csv
import json

import numpy as np
import pytest
from scipy.io import savemat

from refconf.cli import main as cli_main
from refconf.data.binarized import BINARIZED_MNIST_FILES, CALTECH_FILE
from refconf.experiments import PAPER_TABLE2, TABLE2_MODELS, reproduce_table2

TINY = ["--epochs", "1", "--hidden", "8", "--latent", "4", "--m", "1", "--steps", "2",
        "--samples", "6", "--batch-size", "10", "--quiet"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    rng = np.random.default_rng(0)
    for name, n in zip(BINARIZED_MNIST_FILES.values(), (30, 10, 12)):
        rows = rng.random((n, 784)) < 0.2
        (root / name).write_text("".join(" ".join("1" if v else "0" for v in row) + "\n"
                                         for row in rows))
    savemat(root / CALTECH_FILE, {f"{split}_data": (rng.random((n, 784)) < 0.4).astype(float)
                                  for split, n in (("train", 20), ("val", 8), ("test", 9))})
    return root


def test_cli_runs_every_model_on_mnist_and_caltech_files(data_dir, tmp_path, capsys):
    out = tmp_path / "t2"
    code = cli_main(["reproduce", "table2", "--data-dir", str(data_dir), "--datasets", "mnist",
                     "caltech", "--models", *TABLE2_MODELS, "--trials", "2", "--out", str(out),
                     *TINY])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["config_used.json", "results.csv",
                                                     "results.json", "table2.md", "trials"]
    assert len(list((out / "trials").iterdir())) == 2 * 2 * len(TABLE2_MODELS)
    report = json.loads((out / "results.json").read_text())
    assert report["configuration"]["conditioner_input"] == "z1+h"
    assert report["datasets"]["mnist"]["n_train"] == 30
    for name in ("mnist", "caltech"):
        for model in TABLE2_MODELS:
            cell = report["results"][name][model]
            assert len(cell["nll"]) == 2
            # the IS estimate never exceeds the -ELBO of the same samples
            assert all(n <= e for n, e in zip(cell["nll"], cell["neg_elbo"]))
            assert cell["paper"] == [list(v) for v in PAPER_TABLE2[model][name]]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 * len(TABLE2_MODELS)
    first = rows[0]
    assert float(first["nll_trial_2"]) == report["results"][first["dataset"]][first["model"]]["nll"][1]
    table = (out / "table2.md").read_text()
    assert table in captured.out
    for text in ("quoted", "van den Berg", "S = 6", "latent size 4", "flow count F = 2",
                 "conditioner input z1+h", "Larochelle", "Fortran-order", "83.79", "94.56 ± 0.29"):
        assert text in table


def test_a_rerun_resumes_and_another_configuration_is_refused(tmp_path):
    out = tmp_path / "t2"
    options = {"datasets": ["digits"], "models": ["vae", "conf"], "trials": 1, "out": out,
               "epochs": 1, "hidden": (8,), "latent": 4, "m": 1, "steps": 1, "samples": 4,
               "subsample": 40, "progress": False, "log": lambda line: None}
    first = reproduce_table2(**options)
    files = {p.name: p.read_text() for p in (out / "trials").iterdir()}
    lines = []
    again = reproduce_table2(**{**options, "log": lines.append})
    assert "2 of 2 trials finished earlier" in lines[0]
    assert again["results"] == first["results"]
    assert {p.name: p.read_text() for p in (out / "trials").iterdir()} == files
    with pytest.raises(ValueError, match="another configuration"):
        reproduce_table2(**{**options, "conditioner_input": "z1"})


def test_missing_files_and_table1_options_give_one_clear_error(tmp_path, capsys):
    code = cli_main(["reproduce", "table2", "--data-dir", str(tmp_path), "--datasets", "mnist",
                     "--out", str(tmp_path / "o"), *TINY])
    err = capsys.readouterr().err
    assert code == 2
    assert "binarized_mnist_train.amat" in err and "larocheh" in err
    code = cli_main(["reproduce", "table2", "--padding", "paper", *TINY])
    assert code == 2 and "--padding" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model"):
        reproduce_table2(models=["realnvp"])
