"""The signature manifest on the record's first page (21 CFR §11.50): for every sign-off the
signer's printed name, role, the meaning of the signature, its date and time (UTC), its state
now (valid, stale, revoked, with the reason) and, in full, the statements the signer affirmed
by signing (the requirement's attestations in the frozen snapshot)."""

from __future__ import annotations

from typing import Any

from reportlab.lib import colors
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from .pdf_text import FAIL, PASS, STATE, base_style, cell, esc, p, styles

WIDTHS = [100.0, 90.0, 56.0, 134.0, 130.0]
MUTED = "#4b5563"


def _attestations(document: dict) -> dict[str, list[str]]:
    """Each role's attestation statements, as the frozen snapshot holds them."""
    return {
        requirement["role"].lower(): list(requirement.get("attestations") or [])
        for requirement in document["snapshot"].get("signoffs", [])
    }


def _state(signature: dict) -> str:
    state = STATE.get(signature["state"], signature["state"])
    if signature["state"] != "valid" and signature.get("state_reason"):
        state = f"{state}: {signature['state_reason']}"
    return state


def _affirmed(statements: list[str]) -> Paragraph:
    st = styles()
    if not statements:
        return Paragraph(
            f'<font color="{MUTED}">No attestation statements for this role.</font>', st["cell"]
        )
    lines = "<br/>".join(f"{n}. {esc(text)}" for n, text in enumerate(statements, start=1))
    return Paragraph(f"<b>Affirmed by signing:</b><br/>{lines}", st["cell"])


def manifest_table(document: dict) -> Table | Paragraph:
    requirements = document.get("signoffs", [])
    if not requirements:
        return p("No sign-off requirements.")
    statements = _attestations(document)
    rows: list[list[Any]] = [["Printed name", "Role", "Meaning", "Signed (UTC)", "State"]]
    extra: list[tuple] = []
    for requirement in requirements:
        role = requirement["role"] + (" (final decision)" if requirement.get("final") else "")
        signatures = requirement.get("signatures") or []
        if not signatures:
            assignee = requirement.get("assignee") or "nobody assigned"
            rows.append([cell(assignee, WIDTHS[0]), cell(role, WIDTHS[1]), "—", "—", "Not signed"])
            row = len(rows) - 1
            extra.append(("TEXTCOLOR", (4, row), (4, row), colors.HexColor(MUTED)))
            continue
        for signature in signatures:
            rows.append(
                [
                    cell(signature["name"], WIDTHS[0], bold=True),
                    cell(role, WIDTHS[1]),
                    cell(signature["meaning_label"], WIDTHS[2]),
                    cell(signature["at_display"], WIDTHS[3]),
                    cell(_state(signature), WIDTHS[4]),
                ]
            )
            index = len(rows) - 1
            colour = PASS if signature["state"] == "valid" else FAIL
            extra.append(("TEXTCOLOR", (4, index), (4, index), colour))
            rows.append([_affirmed(statements.get(requirement["role"].lower(), []))])
            extra.append(("SPAN", (0, index + 1), (-1, index + 1)))
    result = Table(rows, colWidths=WIDTHS, repeatRows=1)
    result.setStyle(TableStyle(base_style() + extra))
    return result


def manifest(document: dict) -> list[Flowable]:
    """Who decided, when, then every signature with what its signer affirmed."""
    st = styles()
    out: list[Flowable] = []
    decision = document.get("decision")
    if decision:
        out.append(
            p(
                f"Recorded by {decision['name']} ({decision['username']}), {decision['role']}, "
                f"at {decision['at_display']}.",
                st["body"],
            )
        )
    out += [
        Paragraph("Signature manifest", st["h2"]),
        p(
            "Every sign-off on this release: the signer's printed name, role, the meaning of the "
            "signature, its date and time (UTC), its state now, and the statements the signer "
            "affirmed by signing, in full.",
            st["small"],
        ),
        manifest_table(document),
    ]
    return out


__all__ = ["manifest", "manifest_table"]
