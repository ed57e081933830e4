"""The start-up gate: the portal does not start with keys that did not write its data.

When the database holds an audit chain, ``AUDIT_CHAIN_KEY`` must be the key that wrote it
(``checklist.chain_keys``); when it holds sealed decision records, ``DECISION_SIGNING_KEY`` /
``DECISION_SIGNING_CERT`` must be the pair that sealed the newest one (``signoffs.seal_keys``).
Otherwise the process stops with a message naming the key, what the database holds and what to
do, and it generates nothing: a chain key that the settings generated for a fresh checkout
(no key set, no key file) is removed again, so it can never be mistaken for the real one.

One function, ``keys_gate``, called where each process starts — Django's system checks do not
run under gunicorn or Celery:

- ``manage.py`` (``manage_gate``): every command except the few needed to recover or that never
  touch the data (``RECOVERY_COMMANDS``), which print the problem as a warning and run;
- ``dcmms_release.wsgi`` (gunicorn, any WSGI server): the import fails, no worker boots;
- ``dcmms_release.celery``: the worker (``celeryd_init``) and beat (``beat_init``) exit.

And ``manage.py check --database default`` reports it as error ``dcmms.E001``. The cost is one
or two queries per process start, none per request. An unmigrated database (no tables yet) has
nothing to protect; a database that cannot be reached stops the start (the keys cannot be
checked).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

# Commands that must run while a key is missing (to recover, or to look) or never touch the data.
RECOVERY_COMMANDS = frozenset(
    {
        "check",
        "migrate",
        "showmigrations",
        "sqlmigrate",
        "makemigrations",
        "dbshell",
        "collectstatic",
        "diffsettings",
        "help",
        "version",
        "--help",
        "-h",
        "--version",
    }
)
_command: str | None = None  # the manage.py command of this process, if any


class KeysRefused(ImproperlyConfigured):
    """The configured keys did not write this database's records: the process must not start."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"The dCMMS portal ({where}) refuses to start.\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )


def _table_missing(model, using: str) -> bool:
    connection = connections[using]
    with connection.cursor() as cursor:
        return model._meta.db_table not in connection.introspection.table_names(cursor)


def keys_problems(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """What is wrong with the configured keys against this database's data (empty: nothing).
    Raises ``DatabaseError`` when the database cannot be read."""
    from checklist.chain_keys import chain_key_problem
    from checklist.models_audit import AuditChainEntry
    from signoffs.models import DecisionRecord
    from signoffs.seal_keys import signing_key_problem

    problems: list[str] = []
    for check, model in (
        (chain_key_problem, AuditChainEntry),
        (signing_key_problem, DecisionRecord),
    ):
        try:
            problem = check(using)
        except DatabaseError:
            if _table_missing(model, using):  # not migrated yet: no records to protect
                continue
            raise
        if problem is not None:
            problems.append(problem)
    return problems


def forget_generated_chain_key() -> bool:
    """Remove the chain key file the settings generated in this process (no key was set and
    none was kept), so that it is never taken for the key of an existing chain. True if removed.
    A file that holds another key by now (restored meanwhile) is left alone."""
    if getattr(settings, "AUDIT_CHAIN_KEY_SOURCE", "") != "generated":
        return False
    path = Path(settings.AUDIT_CHAIN_KEY_FILE)
    try:
        if path.read_text().strip() != settings.AUDIT_CHAIN_KEY:
            return False
        path.unlink()
    except OSError:
        return False
    return True


def keys_gate(where: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise ``KeysRefused`` unless the configured keys wrote this database's records.
    ``where`` names the process for the message ("web", "worker", "manage.py …"). A chain key
    the settings generated in this process is removed when the start is refused."""
    try:
        problems = keys_problems(using)
    except DatabaseError as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        problems = [
            "The keys cannot be checked against the database: it cannot be read "
            f"({type(exc).__name__}: {first_line}). Start the database first."
        ]
    finally:
        if not connections[using].in_atomic_block:
            connections[using].close()  # a forked worker must open its own
    if problems:
        forget_generated_chain_key()
        raise KeysRefused(where, problems)


def manage_gate(argv: Sequence[str]) -> None:
    """The gate for ``manage.py``: print the refusal and exit with status 1, or return.
    ``RECOVERY_COMMANDS`` run anyway (``check`` and ``migrate`` report the problem through the
    system check ``keys_check``; the others print it as a warning)."""
    global _command
    import django

    _command = argv[1] if len(argv) > 1 else "help"
    try:
        django.setup()
    except Exception:  # broken settings: Django's own command line reports them
        return
    try:
        keys_gate(f"manage.py {_command}")
    except KeysRefused as exc:
        if _command not in RECOVERY_COMMANDS:
            sys.stderr.write(f"{exc}\n")
            raise SystemExit(1) from None
        if _command not in ("check", "migrate"):
            problems = "\n".join(f"- {problem}" for problem in exc.problems)
            sys.stderr.write(f"WARNING: the keys do not match the data.\n{problems}\n")


@checks.register(checks.Tags.database)
def keys_check(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check --database default``: the gate's findings as errors (under ``migrate``,
    a recovery command, as warnings). Like Django's database checks, silent without a database."""
    if not databases:
        return []
    level, code = (checks.Warning, "W001") if _command == "migrate" else (checks.Error, "E001")
    found: list[checks.CheckMessage] = []
    for alias in databases:
        try:
            problems = keys_problems(alias)
        except DatabaseError as exc:
            problems = [f"The keys cannot be checked against the database: {exc}"]
        found += [level(problem, id=f"dcmms.{code}", obj=alias) for problem in problems]
    return found
