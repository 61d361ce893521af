"""Profiles: one name per Lever account (EU, US, ...) tying together which environment variables
hold its key and base URL, its policy, reports folder, ledger, and sync port and journal.

The profiles file (YAML; `LEVER_PROFILES`, default ``~/.config/lever-tags/profiles.yaml``) never
holds a secret: it names the environment variables that do::

    profiles:
      eu:
        key_env: LEVER_EU_API_KEY            # or token_env: LEVER_EU_ACCESS_TOKEN
        base_url: https://api.eu.lever.co/v1 # or base_url_env: LEVER_EU_BASE_URL
        policy: policies/eu.yaml
        reports: reports/eu
        ledger: /var/lib/lever-tags/ledger.sqlite
        sync: {listen: "127.0.0.1:8787", journal: /var/lib/lever-tags/eu-sync.sqlite}

Relative paths are taken from the profiles file's folder. `lever-tags --profile eu COMMAND`
and a batch run's ``profile: eu`` use it (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigurationError
from toolkit.files import read_yaml
from toolkit.specs import PROFILES, check

CREDENTIAL_VARS = ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN", "LEVER_BASE_URL")


def default_profiles_path(environ: Mapping[str, str] | None = None) -> Path:
    """`LEVER_PROFILES`, else ``~/.config/lever-tags/profiles.yaml``."""
    env = os.environ if environ is None else environ
    value = (env.get("LEVER_PROFILES") or "").strip()
    return Path(value).expanduser() if value else Path.home() / ".config/lever-tags/profiles.yaml"


@dataclass(frozen=True)
class Profile:
    """One account's settings (no secret: only the names of the variables holding them)."""

    name: str
    key_env: str | None = None
    token_env: str | None = None
    base_url: str | None = None
    base_url_env: str | None = None
    policy: Path | None = None
    reports: Path | None = None
    ledger: Path | None = None
    sync_listen: str | None = None
    sync_journal: Path | None = None

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The `LEVER_*` variables this profile sets, read from the variables it names.

        Raises:
            ConfigurationError: a variable the profile names is not set (one line).

        Example:
            >>> p = Profile("eu", key_env="EU_KEY", base_url="https://api.eu.lever.co/v1")
            >>> sorted(p.environment({"EU_KEY": "k"}))
            ['LEVER_API_KEY', 'LEVER_BASE_URL', 'LEVER_PROFILE']
        """
        env = os.environ if environ is None else environ

        def read(var: str) -> str:
            value = (env.get(var) or "").strip()
            if not value:
                raise ConfigurationError(
                    f"profile {self.name}: the environment variable {var} is not set"
                )
            return value

        out = {"LEVER_PROFILE": self.name}
        if self.key_env:
            out["LEVER_API_KEY"] = read(self.key_env)
        if self.token_env:
            out["LEVER_ACCESS_TOKEN"] = read(self.token_env)
        if self.base_url_env:
            out["LEVER_BASE_URL"] = read(self.base_url_env)
        elif self.base_url:
            out["LEVER_BASE_URL"] = self.base_url
        if self.ledger:
            out["LEVER_LEDGER"] = str(self.ledger)
        return out


def _path(value: Any, folder: Path) -> Path | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else folder / path


def load_profiles(path: str | os.PathLike | None = None) -> dict[str, Profile]:
    """Read and check the profiles file (`default_profiles_path` when None).

    Raises:
        ConfigurationError: missing file or a bad key, one line naming it.
    """
    path = Path(path) if path else default_profiles_path()
    if not path.is_file():
        raise ConfigurationError(
            f"profiles file not found: {path} (set LEVER_PROFILES; docs/operations.md)"
        )
    data = read_yaml(path, "profiles file")
    check(data, PROFILES, path.name)
    folder = Path(os.path.abspath(path)).parent
    profiles = {}
    for name, raw in data["profiles"].items():
        sync = raw.get("sync") or {}
        profiles[name] = Profile(
            name=name,
            key_env=raw.get("key_env"),
            token_env=raw.get("token_env"),
            base_url=raw.get("base_url"),
            base_url_env=raw.get("base_url_env"),
            policy=_path(raw.get("policy"), folder),
            reports=_path(raw.get("reports"), folder),
            ledger=_path(raw.get("ledger"), folder),
            sync_listen=sync.get("listen"),
            sync_journal=_path(sync.get("journal"), folder),
        )
    return profiles


def get_profile(name: str, path: str | os.PathLike | None = None) -> Profile:
    """The profile `name` (ConfigurationError naming the ones there are)."""
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigurationError(f"no profile {name!r} in the profiles file (there are: {known})")
    return profiles[name]


@contextlib.contextmanager
def profile_environment(profile: Profile | None) -> Iterator[dict[str, str]]:
    """Set the profile's `LEVER_*` variables in ``os.environ`` for the block, then restore.

    A notebook kernel started inside the block inherits them. Credentials of the surrounding
    environment are cleared first: a profile's run never falls back to another account's key.
    """
    if profile is None:
        yield {}
        return
    values = profile.environment()
    saved = {k: os.environ.get(k) for k in {*CREDENTIAL_VARS, *values}}
    try:
        for var in CREDENTIAL_VARS:
            os.environ.pop(var, None)
        os.environ.update(values)
        yield values
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def activate_profile(args: Any) -> Profile:
    """`lever-tags --profile NAME ...`: the profile's credentials, base URL and ledger for this
    process, and its policy, reports folder and sync settings where the command line left
    them unset."""
    profile = get_profile(args.profile)
    values = profile.environment()
    for var in CREDENTIAL_VARS:
        os.environ.pop(var, None)
    os.environ.update(values)
    defaults = {
        "policy": profile.policy,
        "out_root": profile.reports,
        "listen": profile.sync_listen if args.command == "sync" else None,
        "journal": profile.sync_journal if args.command == "sync" else None,
    }
    for attr, value in defaults.items():
        if value is not None and hasattr(args, attr) and getattr(args, attr) is None:
            setattr(args, attr, str(value))
    return profile


__all__ = [
    "Profile",
    "activate_profile",
    "default_profiles_path",
    "get_profile",
    "load_profiles",
    "profile_environment",
]
