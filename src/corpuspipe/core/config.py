"""What every part of the configuration shares: the section base and the whole config's behaviour.

The settings themselves live with the code that reads them: each stage's section class sits in its
own module (``stages/ingest/config.py``, ``stages/watermark/config.py``,
``stages/normalize/config.py``, ``stages/section.py``, ``stages/dedup/config.py``) and
:class:`corpuspipe.config.PipelineConfig` composes them, one line per section, above the stages.
Core only knows the shape: a :class:`ConfigSection` refuses unknown keys and out-of-range values,
and a :class:`PipelineConfigBase` hashes its JSON (and the files its sections name) into every
release.  The engine and the stage interface are typed against the base, so core never imports a
stage.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict


class ConfigSection(BaseModel):
    """One ``[table]`` of the TOML: a frozen model that refuses what it does not know."""

    # Unknown keys are refused (a typo would otherwise silently keep a default); every numeric key has
    # its range, so `dedup.threshold = 1.5` is refused before a build starts (preflight.py).
    # allow_inf_nan=False: `inf`/`nan` are valid TOML floats but no valid setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def input_files(self) -> list[Path]:
        """Files this section names whose *contents* change the output (e.g. a user rules file)."""
        return []


_C = TypeVar("_C", bound="PipelineConfigBase")


class PipelineConfigBase(ConfigSection):
    """The whole configuration's behaviour; its sections are fields of
    :class:`corpuspipe.config.PipelineConfig`.  Hashing its JSON gives the release's config hash."""

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def input_files(self) -> list[Path]:
        """Files the config points at whose *contents* change the output: every section's, in order."""
        return [p for name in type(self).model_fields for p in getattr(self, name).input_files()]

    def config_hash(self) -> str:
        """Hash of the config and of the contents of every file it names: editing a rules file is a
        config change (it changes the release), even though the config text stays the same."""
        h = hashlib.sha256(self.canonical_json().encode())
        for p in self.input_files():
            try:
                h.update(b"\0" + str(p).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
            except OSError:
                h.update(b"\0" + str(p).encode() + b"\0missing")
        return h.hexdigest()[:16]

    @classmethod
    def load(cls: type[_C], path: str | Path | None = None) -> _C:
        """Defaults, overridden by a TOML file with the same section names."""
        if path is None:
            return cls()
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return cls.model_validate(data)
