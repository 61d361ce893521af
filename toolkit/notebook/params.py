"""Notebook parameters: one spec for every parameter a notebook of this project may declare, the
checks a notebook runs on them, and the path rules (docs/architecture.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from toolkit import config
from toolkit.errors import ConfigurationError
from toolkit.notebook.runmode import (
    HEADLESS,
    headless_problems,
    headless_redaction,
    injected_parameters,
    make_kernel_private,
    run_mode,
)
from toolkit.notebook.secrets import refuse_secret_values, secret_values
from toolkit.sanitize import private_dir, safe_yaml_load, short_repr
from toolkit.specs import INPUT_PATH_PARAMETERS, PARAMETERS, PATH_PARAMETERS
from toolkit.specs import problems as spec_problems

# Every parameter a notebook of this project may declare, with its type and constraints, is
# declared once in `toolkit.specs.PARAMETERS`; a notebook's parameters cell gives the defaults.
PARAMETER_SPEC = PARAMETERS["properties"]


_SECRET_NAMES = re.compile(r"(key|token|secret|password)", re.I)


class Parameters(dict):
    """Checked notebook parameters: a dict that also reads as attributes (`params.dry_run`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _repr_html_(self) -> str:  # a small table in notebooks and HTML reports
        return parameters_table(self).to_html(index=False)


def _type_name(value: Any) -> str:
    return type(value).__name__


def parameter_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with `params` (empty when nothing), one short sentence per problem.

    Example:
        >>> parameter_problems({"dry_run": "no", "max_changes": 5})
        ["dry_run must be true or false, got str 'no'"]
    """
    secret = [name for name in params if _SECRET_NAMES.search(name)]
    problems = [
        f"{name}: credentials are never notebook parameters; set LEVER_API_KEY or "
        "LEVER_ACCESS_TOKEN in the environment instead"
        for name in secret
    ]
    known = {k: v for k, v in params.items() if k in PARAMETER_SPEC and k not in secret}
    return problems + spec_problems(known, PARAMETERS)


def check_parameters(
    namespace: MutableMapping[str, Any] | None = None, **params: Any
) -> Parameters:
    """Check a notebook's parameters and return them; raise one clear ConfigurationError if not.

    Types and values follow `toolkit.specs.PARAMETERS`; paths that are given must exist
    (`snapshot_path`, `policy_path`); a name that looks like a credential is refused. Call it in
    the cell after the parameters cell, so a wrong parameter fails there with a one-line reason.

    A notebook passes its namespace, `check_parameters(globals())`: its parameters are the
    names of the spec its parameters cell defined, so each parameter is written once there
    (name, type, default, help) and its constraints once in the spec.

    The returned paths are resolved, so the next cells pass them on as they are: input files
    from the project root (`resolve_path`), `output_dir` to the folder the notebook writes to
    (`resolve_output_dir`, created), a given `journal_path` from the project root.

    Run by something else than `lever-tags report` and outside an interactive Jupyter (plain
    papermill, `jupyter nbconvert --execute`, Airflow: `runmode.run_mode`), the check also
    refuses parameters papermill injected that the notebook does not declare or that carry the
    credential, redacts a notebook that would fetch names by default unless the caller passed
    `with_personal` or `redact`, and makes every file the kernel writes private (umask 077).

    Example:
        >>> p = check_parameters(dry_run=True, max_changes=10, mode="propagate")
        >>> p.max_changes
        10
        >>> check_parameters(max_changes="ten")
        Traceback (most recent call last):
        ...
        toolkit.errors.ConfigurationError: bad notebook parameter: max_changes must be an integer >= 0, got str 'ten'
    """  # noqa: E501
    injected: list[str] = []
    problems: list[str] = []
    headless = namespace is not None and run_mode() == HEADLESS
    if namespace is not None:
        params = {k: namespace[k] for k in PARAMETER_SPEC if k in namespace} | params
        if headless:
            injected, declared = injected_parameters(namespace)
            given = {k: namespace[k] for k in injected if k in namespace}
            secret = {k: v for k, v in given.items() if _SECRET_NAMES.search(k)}
            problems += parameter_problems(secret)  # "credentials are never parameters"
            problems += headless_problems([k for k in injected if k not in secret], declared)
            refuse_secret_values(given, secret_values())
            make_kernel_private()
    problems = parameter_problems(params) + problems + missing_input_files(params)
    if problems:
        raise ConfigurationError("bad notebook parameter: " + "; ".join(problems))
    if headless and namespace is not None and headless_redaction(params, injected):
        params = dict(params, redact=True)  # a shared file: pseudonyms unless asked otherwise
        namespace["redact"] = True  # (globals() of the notebook)
    resolved = dict(params)
    for name in INPUT_PATH_PARAMETERS:
        if resolved.get(name):
            resolved[name] = str(resolve_path(resolved[name]))
    if "output_dir" in resolved:
        resolved["output_dir"] = resolve_output_dir(resolved["output_dir"])
    if resolved.get("journal_path"):  # "" stays: each notebook has its own default journal
        resolved["journal_path"] = str(resolve_path(resolved["journal_path"]))
    return Parameters(resolved)


def parameters_table(params: Mapping[str, Any]) -> pd.DataFrame:
    """The parameters as a two-column table, for display.

    Example:
        >>> parameters_table({"dry_run": True}).to_dict("records")
        [{'parameter': 'dry_run', 'value': 'True'}]
    """
    return pd.DataFrame(
        {"parameter": list(params), "value": [str(v) for v in params.values()]},
        dtype="object",
    )


def resolve_path(path: str | os.PathLike) -> Path:
    """A user-given path: `~` expanded; relative paths are taken from `config.WORK_DIR` (the
    project root in a checkout, the current folder for an installed toolkit).

    Example:
        >>> resolve_path("notebooks/demo-policy.yaml") == config.WORK_DIR / "notebooks/demo-policy.yaml"
        True
    """  # noqa: E501
    p = Path(path).expanduser()
    return p if p.is_absolute() else config.WORK_DIR / p


def absolute_path_parameters(
    params: Mapping[str, Any],
    base: str | os.PathLike,
) -> dict[str, Any]:
    """`params` with every relative path parameter (`PATH_PARAMETERS`) made absolute from `base`.

    `lever-tags report` passes the caller's current folder and a batch file its own folder, so
    `-p policy_path pol.yaml` means the file where the command was typed; the kernel (whose
    working folder is the run folder) then gets an absolute path. `~` is expanded; `""` and
    non-strings are left alone.

    Example:
        >>> absolute_path_parameters({"policy_path": "p.yaml", "top": 3}, "/jobs")
        {'policy_path': '/jobs/p.yaml', 'top': 3}
    """
    out = dict(params)
    for name in PATH_PARAMETERS:
        value = out.get(name)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(base) / path
        out[name] = os.path.abspath(path)
    return out


def run_parameters(params: Mapping[str, Any], base: str | os.PathLike) -> dict[str, Any]:
    """A run's parameters with relative paths taken from `base` (the caller's folder, or a batch
    file's); an input file that does not exist is a ConfigurationError before any kernel starts.

    Example:
        >>> run_parameters({"top": 3}, "/jobs")
        {'top': 3}
    """
    params = absolute_path_parameters(params, base)
    missing = missing_input_files(params)
    if missing:
        raise ConfigurationError("; ".join(missing))
    return params


def missing_input_files(params: Mapping[str, Any]) -> list[str]:
    """One phrase per input file parameter (`snapshot_path`, `policy_path`) that does not exist.

    Example:
        >>> missing_input_files({"policy_path": "/no/such/policy.yaml", "snapshot_path": ""})
        ['policy_path: no such file /no/such/policy.yaml']
    """
    problems = []
    for name in INPUT_PATH_PARAMETERS:
        value = params.get(name)
        if isinstance(value, str) and value and not resolve_path(value).is_file():
            problems.append(f"{name}: no such file {resolve_path(value)}")
    return problems


_INTERACTIVE_DIR: Path | None = None


def resolve_output_dir(output_dir: str | os.PathLike = "") -> Path:
    """Where a notebook writes its artifacts, created if needed.

    `""` means beside the executed notebook, i.e. the working directory papermill gives the kernel
    (the run folder). Opened interactively from `notebooks/`, `""` means a fresh
    `reports/<timestamp>-interactive/` instead, so artifacts never land among the sources.
    """
    if output_dir:
        out = resolve_path(output_dir)
    else:
        cwd = Path.cwd().resolve()
        if cwd == config.NOTEBOOKS_DIR.resolve() or cwd == config.PROJECT_ROOT.resolve():
            global _INTERACTIVE_DIR
            if _INTERACTIVE_DIR is None:  # one folder per kernel session, however many calls
                _INTERACTIVE_DIR = config.REPORTS_DIR / f"{utc_stamp()}-interactive"
            out = _INTERACTIVE_DIR
        else:
            out = cwd
    private_dir(out)  # the folders it creates are 0700: artifacts hold personal data
    return out


def journal_path_for(journal_path: str = "", output_dir: str | os.PathLike = "") -> Path:
    """The journal to use: the given path, else `journal.sqlite` beside the report."""
    if journal_path:
        path = resolve_path(journal_path)
        private_dir(path.parent)
        return path
    return resolve_output_dir(output_dir) / "journal.sqlite"


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its `parameters` cell: name -> type, default, help."""
    import papermill  # heavy (Jupyter stack): loaded only when a notebook is inspected

    path = resolve_notebook(notebook)
    try:
        found = papermill.inspect_notebook(str(path))
    except Exception as exc:  # not JSON, not a notebook
        raise ConfigurationError(f"cannot read notebook {path.name}: {exc}") from exc
    return dict(found)


_TYPE_NAMES = {"str": str, "bool": bool, "int": int, "float": float, "list": list, "dict": dict}


def coerce_parameter(value: Any, type_name: str | None) -> Any:
    """A CLI value (a string parsed as YAML) fitted to the declared type where that is safe.

    A scalar for a `list` parameter becomes a one-item list; an int for a `float` one a float;
    anything for a `str` parameter stays the text given.

    Example:
        >>> coerce_parameter("Python", "list"), coerce_parameter("7", "str"), coerce_parameter("7", "int")
        (['Python'], '7', 7)
    """  # noqa: E501
    kind = _TYPE_NAMES.get((type_name or "").strip())
    if isinstance(value, str) and len(value) > MAX_PARAMETER_CHARS:
        raise ConfigurationError(
            f"a parameter value of {len(value):,} characters (the maximum is "
            f"{MAX_PARAMETER_CHARS:,}); pass large inputs as files (policy_path, snapshot_path)"
        )
    if isinstance(value, str) and kind is not str:
        try:
            value = safe_yaml_load(value) if value.strip() else value
        except yaml.composer.ComposerError as exc:
            if "aliases" in str(exc):
                raise ConfigurationError(
                    f"parameter value {short_repr(value)}: YAML aliases (*name) are not allowed"
                ) from None
        except yaml.YAMLError:
            pass  # not YAML: the text as given
    if kind is list and isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and value is None:
        return ""
    return value


def validate_run_parameters(notebook: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check parameters against the notebook before starting a kernel: names, then types."""
    declared = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigurationError(
            f"{notebook.name} has no parameter {', '.join(unknown)} "
            f"(it has: {', '.join(declared) or 'none'})"
        )
    fitted = {
        name: coerce_parameter(value, declared[name].get("inferred_type_name"))
        for name, value in parameters.items()
    }
    problems = parameter_problems(fitted)
    for name, value in fitted.items():
        kind = _TYPE_NAMES.get((declared[name].get("inferred_type_name") or "").strip())
        if name in PARAMETER_SPEC or kind is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(
                f"{name} must be {kind.__name__}, got {_type_name(value)} {short_repr(value)}"
            )
    if problems:
        raise ConfigurationError(f"{notebook.name}: bad parameter: " + "; ".join(problems))
    return fitted


NOTEBOOK_ALIASES = {
    "explore": "01-explore-tag-coverage",
    "audit": "02-audit-report",
    "remediate": "03-remediate",
    "sync-activity": "04-sync-activity",
}


def utc_stamp(now: datetime | None = None) -> str:
    """`20250101T120000Z`: sortable, safe in file names.

    Example:
        >>> utc_stamp(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
        '20250102T030405Z'
    """
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def resolve_notebook(notebook: str | os.PathLike) -> Path:
    """A notebook by path, by file name in `notebooks/`, by stem, or by alias (`audit`).

    Example:
        >>> resolve_notebook("audit").name
        '02-audit-report.ipynb'
    """
    text = str(notebook)
    text = NOTEBOOK_ALIASES.get(text, text)
    candidates = [Path(text), resolve_path(text), config.NOTEBOOKS_DIR / text]
    candidates += [c.with_name(c.name + ".ipynb") for c in candidates if c.suffix != ".ipynb"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigurationError(f"no such notebook: {notebook} (looked in {config.NOTEBOOKS_DIR})")


# The longest parameter value accepted from the command line or a batch file (before parsing).
MAX_PARAMETER_CHARS = 100_000
