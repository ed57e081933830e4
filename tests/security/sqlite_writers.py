"""Concurrent writers on a SQLite file, as a web server's threads would be: run by
``test_sqlite_writers.py`` in a process of its own (``python -m tests.security.sqlite_writers``)
on a migrated database named by ``DATABASE_URL``. Prints one JSON line: the connection's
settings, then per scenario the status of every request and what was written.

- ``same_requirement``: ten signing requests for one requirement by its signer at once (a
  double-click storm): one signature, the others refused with a message.
- ``own_requirements``: ten signers each sign their own requirement at once: ten signatures.
"""

from __future__ import annotations

import json
import re
import threading

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from checklist.choices import ReleaseStatus  # noqa: E402
from signoffs.models import Signature  # noqa: E402
from signoffs.services import requirement_assign  # noqa: E402
from tests.factories import (  # noqa: E402
    ItemFactory,
    ReleaseFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

PASSWORD = "correct horse battery staple"
WRITERS = 10
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def _sign(client: Client, url: str, username: str, barrier: threading.Barrier, out: list) -> None:
    try:
        page = client.get(url)
        data = dict(HIDDEN.findall(page.content.decode()))  # whatever the form carries
        data.update(meaning="approved", username=username, password=PASSWORD)
        barrier.wait(30)
        response = client.post(url, data)
        body = response.content.decode(errors="replace")
        out.append([page.status_code, response.status_code, "database is locked" in body])
    except Exception as exc:  # noqa: BLE001 — reported, the test fails on it
        out.append(["error", repr(exc)])
    finally:
        connection.close()


def _race(pairs: list[tuple]) -> list:
    """Each (requirement, signer) signs in a thread of its own, released at the same moment."""
    clients = []
    for requirement, signer in pairs:
        client = Client(raise_request_exception=False)
        client.force_login(signer)
        url = reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])
        clients.append((client, url, signer.username))
    barrier, out = threading.Barrier(len(clients)), []
    threads = [
        threading.Thread(target=_sign, args=(client, url, username, barrier, out))
        for client, url, username in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return out


def main() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_ms = cursor.fetchone()[0]
    pm = UserFactory(username="pm", staff=True)
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
    ItemFactory(section=SectionFactory(release=release, number="1"), text="p95 latency")

    def role(name: str):
        requirement = SignoffRequirementFactory(release=release, role=name)
        signer = UserFactory(username=name.lower().replace(" ", "."), staff=True)
        return requirement_assign(requirement=requirement, assignee=signer, by=pm), signer

    requirement, signer = role("QA Lead")
    same = _race([(requirement, signer)] * WRITERS)
    own_pairs = [role(f"Reviewer {n}") for n in range(WRITERS)]
    own = _race(own_pairs)
    return {
        "journal_mode": journal,
        "busy_timeout_ms": busy_ms,
        "transaction_mode": connection.transaction_mode,
        "same_requirement": {
            "requests": same,
            "signatures": Signature.objects.filter(requirement=requirement).count(),
        },
        "own_requirements": {
            "requests": own,
            "signatures": Signature.objects.filter(
                requirement__in=[r for r, _ in own_pairs]
            ).count(),
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
