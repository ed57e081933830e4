"""A signature's state is the replay of its signature events (checked by ``verify_audit``).

Every move of a signature's state (given → valid; valid → stale; → revoked) is appended as a
``SignatureEvent`` in the same transaction (``signoffs.services``), and events are chained. The
signature's ``state`` column is the one column of a signature that may be updated, so it is the
one a forger would set by SQL (a revoked approval made valid again); replaying the chained events
tells the truth.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from .models import Signature, SignatureEvent


def signature_states_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """None when every signature's state equals the replay of its events, each event moving from
    the state the previous one left; otherwise the first signature that does not."""
    replayed: dict[int, str] = {}
    events = SignatureEvent.objects.using(using).order_by("signature_id", "pk")
    for signature_id, from_state, to_state, pk in events.values_list(
        "signature_id", "from_state", "to_state", "pk"
    ).iterator(chunk_size=2000):
        before = replayed.get(signature_id, "")
        if from_state != before:
            return (
                f"signoffs_signatureevent #{pk}: moves signature #{signature_id} from "
                f"'{from_state or 'nothing'}' but its events left it '{before or 'nothing'}'"
            )
        replayed[signature_id] = to_state
    for signature_id, state in (
        Signature.objects.using(using).order_by("pk").values_list("pk", "state").iterator()
    ):
        if replayed.get(signature_id) != state:
            return (
                f"signoffs_signature #{signature_id}: state '{state}' but its events say "
                f"'{replayed.get(signature_id) or 'nothing'}': changed outside the portal"
            )
    return None
