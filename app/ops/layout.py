"""The production process layout as shipped: ``Procfile`` and ``deploy/systemd/``.

``flask deploy check`` reads both and reports what would make a deployment run
badly: a process kind missing, commands that start the wrong thing, the Procfile
and the units starting processes differently, a unit without a working directory
(the entry points ``wsgi:app`` and ``celery_worker:celery`` are modules of the
project directory, not of the installed package), a restart policy, a graceful
stop or resource limits, or beat as a template (it must run once).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

PROCFILE = "Procfile"
UNITS_DIR = Path("deploy") / "systemd"
# The Celery entry point, ``celery_worker.py`` beside ``wsgi.py`` (as gunicorn's wsgi:app).
CELERY_APP = "celery_worker:celery"

# Process kind -> (its systemd unit, what its command must contain, in order).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "web": ("incidentflow-web.service", ("gunicorn", "wsgi:app")),
    "worker": ("incidentflow-worker@.service", ("celery", "-A", CELERY_APP, "worker")),
    "beat": ("incidentflow-beat.service", ("celery", "-A", CELERY_APP, "beat")),
}
RESTART_POLICIES = ("always", "on-failure", "on-abnormal")
# A stop signal the process handles gracefully (gunicorn and Celery: SIGTERM).
GRACEFUL_SIGNALS = ("SIGTERM", "TERM", "15")
RESOURCE_LIMITS = ("MemoryMax", "MemoryHigh", "TasksMax", "CPUQuota")
# Options whose values differ between the two on purpose (addresses, paths, names).
PLACE_OPTIONS = ("--bind", "--schedule", "--hostname")


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines; comments and blank lines skipped."""
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, colon, command = text.partition(":")
        if not colon or not name.strip().isidentifier() or not command.strip():
            raise ValueError(f"line {number} is not 'name: command'")
        if name.strip() in entries:
            raise ValueError(f"line {number} defines {name.strip()!r} a second time")
        entries[name.strip()] = command.strip()
    return entries


def read_unit(path: Path) -> dict[str, dict[str, str]]:
    """A systemd unit as {section: {key: value}} (a repeated key: the last value)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("[") and text.endswith("]"):
            current = sections.setdefault(text[1:-1], {})
            continue
        key, equals, value = text.partition("=")
        if current is None or not equals:
            raise ValueError(f"line {number} is neither '[Section]' nor 'Key=value'")
        current[key.strip()] = value.strip()
    return sections


def _words(command: str) -> list[str]:
    return shlex.split(command)


def _contains_in_order(words: list[str], wanted: tuple[str, ...]) -> bool:
    names = [Path(word).name if "/" in word else word for word in words]
    position = 0
    for name in names:
        if position < len(wanted) and name == wanted[position]:
            position += 1
    return position == len(wanted)


def _options(words: list[str]) -> set[str]:
    """``--flag`` and ``--option=value``/``--option value`` names and values, minus
    the options that name places (which may differ between the Procfile and a unit)."""
    found: set[str] = set()
    skip_next = False
    for index, word in enumerate(words):
        if skip_next:
            skip_next = False
            continue
        if not word.startswith("-") or word == "-A":
            continue
        name = word.split("=", 1)[0]
        if name in PLACE_OPTIONS:
            skip_next = "=" not in word
            continue
        value = ""
        if "=" in word:
            value = word.split("=", 1)[1]
        elif index + 1 < len(words) and not words[index + 1].startswith("-"):
            following = words[index + 1]
            if following not in ("worker", "beat") and ":" not in following:
                value = following
                skip_next = True
        found.add(f"{name}={value}" if value else name)
    return found


def check_layout(root: Path) -> list[Problem]:
    """Every problem with the Procfile and units under ``root``; empty when sound."""
    problems: list[Problem] = []
    procfile = root / PROCFILE
    try:
        entries = read_procfile(procfile)
    except FileNotFoundError:
        return [Problem(PROCFILE, "missing")]
    except ValueError as error:
        return [Problem(PROCFILE, str(error))]
    for kind, (unit_name, wanted) in KINDS.items():
        command = entries.get(kind)
        words = None if command is None else _words(command)
        if words is None:
            problems.append(Problem(PROCFILE, f"no '{kind}' process"))
        elif not _contains_in_order(words, wanted):
            problems.append(Problem(PROCFILE, f"'{kind}' does not run {' '.join(wanted)}"))
        problems.extend(_check_unit(root / UNITS_DIR / unit_name, kind, wanted, words))
    return problems


def _check_unit(
    path: Path, kind: str, wanted: tuple[str, ...], procfile_words: list[str] | None
) -> list[Problem]:
    where = str(UNITS_DIR / path.name)
    try:
        service = read_unit(path).get("Service", {})
    except FileNotFoundError:
        return [Problem(where, "missing")]
    except ValueError as error:
        return [Problem(where, str(error))]
    problems: list[Problem] = []
    words = _words(service.get("ExecStart", ""))
    if not _contains_in_order(words, wanted):
        problems.append(Problem(where, f"ExecStart does not run {' '.join(wanted)}"))
    elif procfile_words is not None and _options(words) != _options(procfile_words):
        differ = sorted(_options(words) ^ _options(procfile_words))
        problems.append(
            Problem(where, f"ExecStart and the Procfile's '{kind}' differ in {', '.join(differ)}")
        )
    if not service.get("WorkingDirectory"):
        entry = next(word for word in wanted if ":" in word)
        problems.append(
            Problem(where, f"no WorkingDirectory: {entry} is loaded from the project directory")
        )
    if service.get("Restart") not in RESTART_POLICIES:
        problems.append(Problem(where, "no restart policy (Restart=always)"))
    if service.get("KillSignal", "SIGTERM") not in GRACEFUL_SIGNALS:
        problems.append(Problem(where, "KillSignal is not SIGTERM: no graceful stop"))
    if not service.get("TimeoutStopSec"):
        problems.append(Problem(where, "no TimeoutStopSec: how long a graceful stop may take"))
    if not any(service.get(limit) for limit in RESOURCE_LIMITS):
        problems.append(Problem(where, f"no resource limit ({', '.join(RESOURCE_LIMITS)})"))
    return problems
