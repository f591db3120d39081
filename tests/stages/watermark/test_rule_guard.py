"""Issue 13 #5: a catastrophic user regex never hangs a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpuspipe.config import PipelineConfig, WatermarkConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.stages.watermark import (
    RuleGuard,
    RulesFileError,
    catastrophic_reason,
    check_rules_file,
    load_rules,
    remove_watermarks,
)


def _seed_essays(raw_dir: Path, tail: str):
    cfg = PipelineConfig().ingest
    essays = [e for p in sorted(raw_dir.glob("*.txt"))[:3] for e in ingest_file(raw_dir, p.name, cfg).essays]
    for e in essays[:2]:  # a crawler artefact at the end of two real essays
        e.body = type(e.body)(e.body.text + "\n" + tail + "\n")
    return essays


def _rules(tmp_path: Path, pattern: str) -> Path:
    f = tmp_path / "user.toml"
    f.write_text(f"[[rule]]\nname = 'slow'\nscope = 'inline'\npattern = '''{pattern}'''\n"
                 "[[rule]]\nname = 'qq_group'\nscope = 'inline'\npattern = '''QQ群:\\d{5,}'''\n", encoding="utf-8")
    return f


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(?:\w*\s?)*x", r"((ab)*)+c", r"(?:(a+))*!"])
def test_obviously_catastrophic_patterns_are_refused_at_load(tmp_path, pattern):
    assert catastrophic_reason(pattern)
    with pytest.raises(RulesFileError, match=r"user\.toml: rule 'slow' pattern: pattern refused"):
        load_rules(str(_rules(tmp_path, pattern)))


def test_shipped_rules_and_separated_repeats_are_not_refused():
    assert load_rules()  # the URL rule's (?:\.[A-Za-z0-9-]+)* must pass
    for ok in [r"(?:\.[a-z]+)*", r"[a-z]+(?:-[a-z]+)*", r"\d{2,4}[-/.年]\d{1,2}", r"(?:ab|cd)+"]:
        assert catastrophic_reason(ok) is None, ok


def test_a_rule_that_times_out_is_disabled_and_counted_not_hung(tmp_path, raw_dir):
    # (a|aa)+$ passes the structural check; with `re` it needs ~fib(40) steps on this line (hours).
    cfg = WatermarkConfig(rules_file=str(_rules(tmp_path, r"(a|aa)+$")))
    essays = _seed_essays(raw_dir, "a" * 40 + "! 加入QQ群:12345678")
    texts = [rebuild_raw(e.body.text, e.body.edits) for e in essays]
    guard = RuleGuard(timeout=0.05)
    removed = remove_watermarks(essays, cfg, guard=guard)
    assert guard.counters()["rule_timeouts"] == 1  # disabled after its first timeout: never tried again
    assert guard.counters()["rule_timeouts.slow"] == 1
    assert "slow" not in removed and removed["qq_group"] == 2 * len("QQ群:12345678")  # other rules still ran
    assert essays[0].stats.get("watermark.rule_timeout.slow") == 1
    for e, t in zip(essays, texts):
        assert rebuild_raw(e.body.text, e.body.edits) == t


def test_rules_file_errors_name_the_file_and_rule_never_the_contents(tmp_path):
    f = tmp_path / "secret.toml"
    f.write_text('api_key = "sk-live-0123456789abcdef"\n[[rule]]\nname = "bad_one"\nscope = "inline"\n'
                 'pattern = "(unclosed"\n', encoding="utf-8")
    with pytest.raises(RulesFileError) as info:
        check_rules_file(f)
    msg = str(info.value)
    assert "secret.toml" in msg and "sk-live" not in msg and "(unclosed" not in msg
    assert "api_key" in msg  # the unknown key is named, its value is not

    f.write_text('api_key = "sk-live-0123456789abcdef"\n', encoding="utf-8")
    with pytest.raises(RulesFileError, match="no \\[\\[rule\\]\\] table") as info:
        check_rules_file(f)
    assert "sk-live" not in str(info.value)
    with pytest.raises(RulesFileError, match="not found"):
        check_rules_file(tmp_path / "nope.toml")
