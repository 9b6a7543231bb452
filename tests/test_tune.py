"""Issue 13 item 2: `train --tune N` searches on time splits of the training window only."""

from __future__ import annotations

import json

import pytest

from detector_data import detector_yaml, signal_workspace
from riskconsole.detectors import train_detector
from riskconsole.detectors.search import splits
from riskconsole.detectors.training import Tune
from riskconsole.errors import RiskConsoleError


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return signal_workspace(tmp_path_factory.mktemp("tune") / "ws")


def test_splits_expand_forward_in_time():
    got = splits(100)
    assert [(a.stop, b.start, b.stop) for a, b in got] == [(25, 25, 50), (50, 50, 75), (75, 75, 100)]
    assert all(a.start == 0 for a, _ in got)


def test_tune_lists_trials_on_the_card_and_uses_the_best(ws, capsys):
    from riskconsole.cli import main

    path = detector_yaml(ws.root, "t", "lightgbm")
    assert main(["train", str(path), "--tune", "3", "--workspace", str(ws.root)]) == 0
    err = capsys.readouterr().err
    assert "tuning: trial 1/3" in err and "tuning: trial 3/3" in err
    card = json.loads((ws.models_dir / "t" / "card.json").read_text())
    trials = card["tuning"]["trials"]
    assert len(trials) == 3 and card["tuning"]["best_value"] == max(t["ap"] for t in trials)
    best = card["tuning"]["best_params"]
    assert card["params"]["num_leaves"] == best["num_leaves"]
    assert "Tuning (Optuna TPE" in (ws.models_dir / "t" / "card.md").read_text()


def test_budget_too_small_for_one_trial_is_one_line(ws):
    path = detector_yaml(ws.root, "u", "lightgbm")
    with pytest.raises(RiskConsoleError) as err:
        train_detector(ws, path, tune=Tune(5, 1e-6))
    text = str(err.value)
    assert text.startswith("detectors/u.yaml: --tune: the time budget of 1e-06 s ended before one trial finished")
    assert "raise --tune-budget" in text and "\n" not in text
    assert not (ws.models_dir / "u").exists()


@pytest.mark.parametrize("argv, message", [
    (["--tune-budget", "5"], "--tune-budget: only means something with --tune N"),
    (["--tune", "0"], "--tune 0: give the number of trials, at least 1"),
])
def test_cli_refuses_bad_tune_flags(ws, capsys, argv, message):
    from riskconsole.cli import main

    assert main(["train", str(detector_yaml(ws.root, "v", "lightgbm")), *argv, "--workspace", str(ws.root)]) == 1
    assert message in capsys.readouterr().err


def test_tune_refuses_pyod(ws):
    with pytest.raises(RiskConsoleError, match="--tune searches LightGBM settings"):
        train_detector(ws, detector_yaml(ws.root, "h", "pyod.hbos"), tune=Tune(2))
