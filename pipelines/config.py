"""Settings of the nightly job: packaged defaults deep-merged with an optional user file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_PATH = Path(__file__).with_name("settings.yaml")
CONFIG_ENV = "POSTLOAN_CONFIG"


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"settings file not found: {path}")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"settings file {path} must hold a mapping at the top level")
    return loaded


def load_settings(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the defaults merged with ``path`` (or $POSTLOAN_CONFIG) and then ``overrides``."""
    settings = _yaml_mapping(DEFAULTS_PATH)
    chosen = path or os.environ.get(CONFIG_ENV)
    if chosen:
        settings = _merged(settings, _yaml_mapping(Path(chosen)))
    if overrides:
        settings = _merged(settings, overrides)
    return settings
