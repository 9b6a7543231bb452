"""The deploy gate: exit codes for holding and failing guardrails, and one-line errors."""

from __future__ import annotations

import re

import pytest
import yaml

from riskconsole.cli import main
from riskconsole.gate import Guardrail, judge
from riskconsole.report import Baseline, run_backtest
from riskconsole.session import Session

RULES = [
    {"name": "burst", "when": "user_orders_1h >= 2", "action": "block"},
    {"name": "big_live", "when": "amount > 150 AND channel = 'live'", "action": "review"},
    {"name": "shared_device", "when": "device_users_1d >= 3", "action": "review"},
]


def _gate(capsys, ws, *args):
    resamples = ["--bootstrap", "200"] if "--baseline" in args else []  # only meaningful with a baseline
    code = main(["gate", str(ws.strategies_dir / "more.yaml"), "--workspace", str(ws.root), *resamples, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _setup(ws):
    (ws.strategies_dir / "less.yaml").write_text(yaml.safe_dump({"name": "less", "rules": RULES[:2]}))
    (ws.strategies_dir / "more.yaml").write_text(yaml.safe_dump({"name": "more", "rules": RULES}))


def _line(out: str, guardrail: str) -> tuple[str, list[float]]:
    """The PASS/FAIL word of a guardrail's line and every number it quotes (value, then interval)."""
    (line,) = [ln for ln in out.splitlines() if ln.split(" ", 1)[-1].startswith(guardrail + ":")]
    numbers = re.findall(r"[+-]?[\d,]*\.?\d+", line.split(":", 1)[1].replace("95% CI", ""))
    return line.split(" ", 1)[0], [float(n.replace(",", "")) for n in numbers]


def test_gate_passes_and_fails_on_its_guardrails(tiny_ws, capsys):
    _setup(tiny_ws)
    base = ["--baseline", str(tiny_ws.strategies_dir / "less.yaml")]
    with Session(tiny_ws) as session:
        window = session.window()  # the gate's window without --to: up to the last mature day
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "more.yaml", window,
                          baseline=Baseline(tiny_ws.strategies_dir / "less.yaml", bootstrap=200, seed=7)).report
    delta, ci = report["compare"]["delta"], report["compare"]["intervals"]["delta"]
    assert delta["review_cases"] > 0 and delta["recall"] >= 0  # adding a rule can only flag more
    # adding a rule can only flag more: recall cannot drop, review cases rise
    code, out, err = _gate(capsys, tiny_ws, *base, "--require", "recall>=+0.00", "--require", "review_cases>=+1")
    assert code == 0 and err == "", (out, err)
    status, numbers = _line(out, "recall>=+0.00")
    assert status == "PASS" and numbers == pytest.approx([delta["recall"], *ci["recall"]], abs=5e-5)
    assert ci["recall"][0] >= 0.0  # why it passes: the whole interval holds
    status, numbers = _line(out, "review_cases>=+1")
    assert status == "PASS" and numbers == pytest.approx([delta["review_cases"], *ci["review_cases"]], abs=0.5)
    assert out.count("PASS ") == 2 and "PASSED: 2 of 2 guardrails hold (more vs" in out
    assert f"{report['window']['from']}..{report['window']['to']}" in out and report["window"]["to"] < "2026-03-06"
    assert f"note: {window.note}" in out  # judged on mature days only, and it says so
    # and what the numbers are worth, as the backtest says it (the gate printed none of them: a detector scored on
    # its own training days passed a deploy gate without a word)
    others = [w for w in report["warnings"] if w != window.note]
    assert others and all(f"  warning: {w}\n" in out for w in others)

    code, out, err = _gate(capsys, tiny_ws, *base, "--require", "recall>=+0.00", "--require", "review_cases<=+0")
    assert code == 1 and err == "", (out, err)  # a guardrail failing is not an error
    assert _line(out, "recall>=+0.00")[0] == "PASS"
    status, numbers = _line(out, "review_cases<=+0")
    assert status == "FAIL" and numbers == pytest.approx([delta["review_cases"], *ci["review_cases"]], abs=0.5)
    assert "FAILED: 1 of 2 guardrails hold" in out

    code, out, err = _gate(capsys, tiny_ws, *base, "--require", "review_overflow_days<=0")
    assert code == 1 and err == ""
    status, numbers = _line(out, "review_overflow_days<=0")
    overflow = report["overall"]["review_overflow_days"]
    assert status == "FAIL" and numbers == [overflow] and overflow > 0  # capacity 3 a day is far exceeded
    assert "FAILED: 0 of 1 guardrails hold" in out


def test_a_crash_is_not_a_failed_guardrail(tiny_ws, capsys, monkeypatch):
    """Both exit 1: a failed guardrail prints its FAIL line and verdict, an error prints only `error: ...`."""
    _setup(tiny_ws)
    (tiny_ws.strategies_dir / "less.yaml").write_text("name: less\nrules: [{name: x, when: 'nope >= 1'}]\n")
    code, out, err = _gate(capsys, tiny_ws, "--baseline", str(tiny_ws.strategies_dir / "less.yaml"),
                           "--require", "recall>=+0.00")
    assert code == 1 and out == "" and err.startswith("error: ") and "FAIL" not in err
    _setup(tiny_ws)

    def boom(*args, **kwargs):
        raise RuntimeError("bug in the gate")

    monkeypatch.setattr("riskconsole.gate.judge", boom)
    with pytest.raises(RuntimeError):  # an unexpected crash is never turned into a quiet exit 1
        _gate(capsys, tiny_ws, "--baseline", str(tiny_ws.strategies_dir / "less.yaml"), "--require", "recall>=+0.00")


def test_guardrails_in_the_strategy_yaml(tiny_ws, capsys):
    _setup(tiny_ws)
    body = yaml.safe_load((tiny_ws.strategies_dir / "more.yaml").read_text())
    (tiny_ws.strategies_dir / "more.yaml").write_text(yaml.safe_dump({**body, "guardrails": ["precision>=0.99"]}))
    code, out, _ = _gate(capsys, tiny_ws, "--baseline", str(tiny_ws.strategies_dir / "less.yaml"))
    assert code == 1 and "FAIL precision>=0.99" in out


def test_gate_errors(tiny_ws, capsys):
    _setup(tiny_ws)
    code, _, err = _gate(capsys, tiny_ws, "--baseline", str(tiny_ws.strategies_dir / "less.yaml"),
                         "--require", "recal>=+0.00")
    assert code == 1 and "unknown metric 'recal'" in err and err.count("\n") == 1
    code, _, err = _gate(capsys, tiny_ws, "--require", "recall>=+0.00")
    assert code == 1 and "give --baseline" in err
    code, _, err = _gate(capsys, tiny_ws, "--require", "recall is good")
    assert code == 1 and "write METRIC OP VALUE" in err


def test_judge_uses_the_worst_end_of_the_interval():
    report = {"overall": {"recall": 0.5}, "compare": {"delta": {"recall": 0.02},
                                                      "intervals": {"delta": {"recall": [-0.01, 0.05]}}}}
    assert not judge(Guardrail("recall>=+0.00", "recall", ">=", 0.0, True), report)["holds"]
    assert judge(Guardrail("recall>=-0.02", "recall", ">=", -0.02, True), report)["holds"]
    assert judge(Guardrail("recall<=+0.06", "recall", "<=", 0.06, True), report)["holds"]
