"""Each stage's settings live beside the stage, and ``corpuspipe.config.PipelineConfig`` only
composes them (issue 22): a newcomer finds a key where the code that reads it is."""

from __future__ import annotations

import tomllib
from pathlib import Path

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core.config import ConfigSection

from tests.helpers.paths import REPO


def test_a_stage_s_config_section_is_defined_in_its_own_stage_package():
    """Every section a stage reads is a field of PipelineConfig whose class is defined in that
    stage's module or package, never in core (core cannot import stages; the composition can)."""
    seen = set()
    for stage in pipeline.STAGES:
        home = ".".join(type(stage).__module__.split(".")[:3])  # corpuspipe.stages.<stage>
        for sec in stage.config_sections:
            cls = PipelineConfig.model_fields[sec].annotation
            assert issubclass(cls, ConfigSection)
            assert cls.__module__ == home or cls.__module__.startswith(home + "."), (sec, cls.__module__)
            seen.add(sec)
    # the sections no stage declares are the release's own (name, encoding, shards)
    assert set(PipelineConfig.model_fields) - seen == {"release"}


def test_the_composed_config_is_the_one_users_write():
    """Section order, keys and defaults are the user-facing TOML: config.example.toml lists exactly
    the composed sections in order, and a file naming one key of each section loads into them."""
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    tables = [line[1:-1] for line in example.splitlines() if line.startswith("[")]
    assert tables == list(PipelineConfig.model_fields)
    cfg = PipelineConfig.model_validate(tomllib.loads(
        "[ingest]\nmin_essay_chars = 7\n[watermark]\nmin_chars = 9\n[normalize]\nredact_pii = false\n"
        "[section]\nmin_sequence = 3\n[dedup]\nngram = 4\n[release]\nshard_files = 8\n"))
    assert (cfg.ingest.min_essay_chars, cfg.watermark.min_chars, cfg.normalize.redact_pii,
            cfg.section.min_sequence, cfg.dedup.ngram, cfg.release.shard_files) == (7, 9, False, 3, 4, 8)


def test_a_section_names_the_files_that_change_the_output(tmp_path):
    """The config hash covers the contents of the files a section names (the watermark rules
    file), through the section's own ``input_files``."""
    rules = tmp_path / "rules.toml"
    rules.write_text("", encoding="utf-8")
    cfg = PipelineConfig.model_validate({"watermark": {"rules_file": str(rules)}})
    assert cfg.input_files() == [rules]
    before = cfg.config_hash()
    rules.write_text('[[rule]]\nname = "x"\npattern = "y"\n', encoding="utf-8")
    assert cfg.config_hash() != before
    assert PipelineConfig().input_files() == []
