"""The deploy gate: exit codes for holding and failing guardrails, and one-line errors."""

from __future__ import annotations

import yaml

from riskconsole.cli import main
from riskconsole.gate import Guardrail, judge

RULES = [
    {"name": "burst", "when": "user_orders_1h >= 2", "action": "block"},
    {"name": "big_live", "when": "amount > 150 AND channel = 'live'", "action": "review"},
    {"name": "shared_device", "when": "device_users_1d >= 3", "action": "review"},
]


def _gate(capsys, ws, *args):
    code = main(["gate", str(ws.strategies_dir / "more.yaml"), "--workspace", str(ws.root), "--bootstrap", "200",
                 *args])
    out, err = capsys.readouterr()
    return code, out, err


def _setup(ws):
    (ws.strategies_dir / "less.yaml").write_text(yaml.safe_dump({"name": "less", "rules": RULES[:2]}))
    (ws.strategies_dir / "more.yaml").write_text(yaml.safe_dump({"name": "more", "rules": RULES}))


def test_gate_passes_and_fails_on_its_guardrails(tiny_ws, capsys):
    _setup(tiny_ws)
    base = ["--baseline", str(tiny_ws.strategies_dir / "less.yaml")]
    # adding a rule can only flag more: recall cannot drop, review cases rise
    code, out, _ = _gate(capsys, tiny_ws, *base, "--require", "recall>=+0.00", "--require", "review_cases>=+1")
    assert code == 0, out
    assert out.count("PASS ") == 2 and "PASSED: 2 of 2" in out and "95% CI" in out
    code, out, _ = _gate(capsys, tiny_ws, *base, "--require", "recall>=+0.00", "--require", "review_cases<=+0")
    assert code == 1 and "FAIL review_cases<=+0" in out and "FAILED: 1 of 2" in out
    code, out, _ = _gate(capsys, tiny_ws, *base, "--require", "review_overflow_days<=0")
    assert code == 1  # capacity 3 a day is far exceeded


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
