"""Checks the CLI runs before anything slow starts, so a user error is one line within a second.

Issue 13 #8: a bad `--version` or config used to surface only after Prefect's embedded server had
started (6-10 s) or as a pydantic traceback.  Everything here imports only the standard library,
pydantic and fsspec's registry (no Prefect, no pyarrow): `corpuspipe release raw --version bad`
answers in ~0.5 s (measured; Prefect's import alone is ~2 s).  Messages name the file and the key or
rule and never echo a file's contents: config and rules files sit beside secrets.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import tempfile
import tomllib
from pathlib import Path

from pydantic import ValidationError

from corpuspipe.config import PipelineConfig
from corpuspipe.core.io import read_user_text

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
# fsspec protocol -> (module it needs, extra that installs it)
_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
_LOCAL = {None, "", "file", "local"}


class PreflightError(Exception):
    """A user error found before the build starts; str() is the one line to print."""


def load_config(path: Path | None) -> PipelineConfig:
    """The validated config, or PreflightError naming the file and every bad key (never a value)."""
    if path is None:
        return PipelineConfig()
    path = Path(path)
    text = read_user_text(path, "config file", PreflightError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PreflightError(f"{path}: not valid TOML: {exc}") from None
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise PreflightError(f"{path}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        key = ".".join(str(x) for x in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown key {key}")
        else:
            parts.append(f"{key}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def check_rules(cfg: PipelineConfig) -> None:
    """The watermark rules file: exists, TOML, has [[rule]], every pattern compiles and is sane."""
    if not cfg.watermark.rules_file:
        return
    from corpuspipe.stages.watermark import RulesFileError, check_rules_file

    try:
        check_rules_file(cfg.watermark.rules_file)
    except RulesFileError as exc:
        raise PreflightError(str(exc)) from None


def _key(v: str) -> tuple[int, int, int]:
    m = _SEMVER.match(v)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (-1, -1, -1)


def latest_version(out: Path) -> str | None:
    """Newest version in an output dir: complete release dirs (also ones a crash left unindexed),
    index.json and latest."""
    versions: set[str] = set()
    out = Path(out)
    if not out.is_dir():
        return None
    for p in out.iterdir():
        if _SEMVER.match(p.name) and (p / "MANIFEST.json").is_file():
            versions.add(p.name)
    try:
        index = json.loads((out / "index.json").read_text(encoding="utf-8"))
        versions.update(str(e["version"]) for e in index.get("releases", []) if _SEMVER.match(str(e["version"])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return max(versions, key=_key) if versions else None


def check_version(version: str | None, out: Path) -> None:
    if version is None:
        return
    if not _SEMVER.match(version):
        raise PreflightError(f"--version {version!r} is not MAJOR.MINOR.PATCH (e.g. 1.2.0)")
    latest = latest_version(out)
    if latest is not None and _key(version) <= _key(latest):
        raise PreflightError(f"--version {version} is not newer than the latest release {latest} in {out}")


# What marks a folder as a releases root (``corpuspipe release --out``): its index and its pointer to
# the newest release, or (before the first release is written) its build lock and work folder.  Pairs,
# so that a stray ``latest`` or ``.lock`` in a home folder does not make everything under it a root.
# A release itself holds MANIFEST.json.
_ROOT_MARKERS = (("index.json", "latest"), (".lock", ".work"))


def _is_root_or_release(d: Path) -> bool:
    return (d / "MANIFEST.json").is_file() or any(all(os.path.lexists(d / m) for m in pair) for pair in _ROOT_MARKERS)


def releases_root_or_release(path: Path) -> Path | None:
    """The releases root or release that ``path`` is, or is inside (None if neither).  Only the path
    and its ancestors are looked at: a few ``stat`` calls."""
    p = Path(os.path.abspath(path))
    for d in (p, *p.parents):
        if _is_root_or_release(d):
            return d
    return None


def check_output_path(path: Path, what: str) -> None:
    """Refuse an output (``export``'s folder, ``show --html``, ``diff --out``) that is, or is inside,
    a releases root or a release: issue 24 #13-14 -- an export into ``releases/1.1.0`` made the next
    release crash on its missing MANIFEST.json, and ``show --html releases/index.json`` overwrote the
    index (``inspect`` then failed, ``release`` crashed).  Releases are written by ``release`` only."""
    found = releases_root_or_release(path)
    if found is None:
        return
    kind = "release" if (found / "MANIFEST.json").is_file() else "the releases folder"
    raise PreflightError(f"refusing to write into {kind} {found} ({what} {path}): only `corpuspipe release` "
                         "writes there; choose a path outside it")


def check_release_out(out: Path) -> None:
    """``release --out`` may be a releases root (or a new folder), never a folder inside one or
    inside a release (a second root in there would be taken for one of its releases)."""
    p = Path(os.path.abspath(out))
    for d in p.parents:
        if _is_root_or_release(d):
            kind = "release" if (d / "MANIFEST.json").is_file() else "releases folder"
            raise PreflightError(f"--out {out} is inside the {kind} {d}; give the releases folder itself "
                                 f"(e.g. --out {d}) or a folder outside it")
    if (p / "MANIFEST.json").is_file():
        raise PreflightError(f"--out {out} is a release; give the releases folder that holds it (--out {p.parent})")


def _probe_dir(path: Path, what: str) -> None:
    """Create and delete a file in the nearest existing ancestor of ``path`` (os.access lies for root)."""
    probe_root = Path(path)
    while not probe_root.exists():
        probe_root = probe_root.parent
    if not probe_root.is_dir():
        raise PreflightError(f"{what} is not a directory: {probe_root}")
    try:
        fd, name = tempfile.mkstemp(prefix=".corpuspipe-probe-", dir=probe_root)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise PreflightError(f"{what} is read-only: {path} ({exc.strerror})") from None
        raise PreflightError(f"cannot write to {what} {path}: {exc.strerror or exc}") from None


def check_publish_target(target: str) -> None:
    """The fsspec backend is installed (no import: find_spec only) and a local target is writable."""
    from fsspec.core import split_protocol
    from fsspec.registry import known_implementations

    protocol, path = split_protocol(target)
    if protocol in _LOCAL:
        _probe_dir(Path(path), "publish target")
        return
    if protocol in _EXTRAS:
        module, extra = _EXTRAS[protocol]
        if importlib.util.find_spec(module) is None:
            raise PreflightError(f"publishing to {protocol}:// needs {module}; install it with: "
                                 f"pip install 'corpuspipe[{extra}]'")
        return
    if protocol not in known_implementations and protocol != "memory":
        raise PreflightError(f"unknown publish target protocol {protocol}:// in {target}")
    impl = known_implementations.get(protocol, {})
    module = str(impl.get("class", "")).split(".")[0]
    if module and importlib.util.find_spec(module) is None:
        raise PreflightError(f"publishing to {protocol}:// needs {module}; install it with: pip install {module}")
