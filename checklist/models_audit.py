"""The security audit trail: who signed in, failed to, was locked out, refused, downloaded a
record or changed who holds which role (21 CFR Part 11 §11.10(e), ASVS 7.1/7.2). Rows are
append-only (database triggers, ``checklist.triggers``) and never hold a password."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditKind(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGOUT = "logout", "Signed out"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOCKOUT = "lockout", "Locked out"
    UNLOCK = "unlock", "Lockout lifted"
    SESSION_EXPIRED = "session_expired", "Session ended (12 h limit)"
    SESSIONS_ENDED = "sessions_ended", "Other sessions ended"
    PERMISSION_DENIED = "permission_denied", "Permission denied"
    RATE_LIMITED = "rate_limited", "Rate limited"
    RECORD_DOWNLOAD = "record_download", "Record downloaded"
    ROLE_ASSIGNMENT_CHANGED = "role_assignment_changed", "Role assignment changed"
    PURGE = "purge", "Records purged"
    ACCOUNT_CREATED = "account_created", "Account created"
    ACCOUNT_CHANGED = "account_changed", "Account flags changed"
    ACCOUNT_DELETED = "account_deleted", "Account deleted"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    GROUP_MEMBERSHIP_CHANGED = "group_membership_changed", "Group membership changed"
    PERMISSIONS_CHANGED = "permissions_changed", "Model permissions changed"
    OBJECT_PERMISSION_CHANGED = "object_permission_changed", "Object permission changed"
    RELEASE_MEMBER_CHANGED = "release_member_changed", "Release membership changed"
    ACCOUNT_ATTACK = "account_attack", "Account under attack"


class AuditEvent(models.Model):
    """One security-relevant event. ``username`` is the name as typed (for failed sign-ins it
    may name nobody); the actor link survives even if the account row were ever removed."""

    at = models.DateTimeField(default=timezone.now, db_index=True, help_text="Server time, UTC.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=32, choices=AuditKind.choices)
    release = models.ForeignKey(
        "checklist.Release",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    object_repr = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["kind", "at"], name="auditevent_kind_at")]
        verbose_name = "audit event"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()} {self.username}".strip()


class AuditChainEntry(models.Model):
    """One link of the keyed hash chain over the audit records (``checklist.chain``): which row
    (table and primary key), the SHA-256 of its canonical content, the previous link's MAC and
    this link's MAC = HMAC-SHA256(AUDIT_CHAIN_KEY, seq | table | pk | content | previous MAC).
    The key is not in the database, so a link cannot be forged or re-computed from it."""

    seq = models.PositiveBigIntegerField(unique=True)
    table = models.CharField(max_length=100)
    row_pk = models.BigIntegerField()
    content_sha256 = models.CharField(max_length=64)
    prev_mac = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)
    chained_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["table", "row_pk"], name="auditchain_one_link_per_row")
        ]
        verbose_name = "audit chain entry"
        verbose_name_plural = "audit chain entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.table} {self.row_pk}"


class AuditPurge(models.Model):
    """One retention purge's marker: exactly which rows it removed (per table, sorted ranges of
    primary keys), the cutoff it applied, when, and its ``purge`` audit event. Written and linked
    into the hash chain by the purge itself, in its own transaction and with the key; the sweep
    never links a marker, so ``verify_audit`` treats one without a valid link as forged, and a
    chained row that is missing as deleted unless a marker linked after it lists it.
    Append-only, like the rows it accounts for."""

    at = models.DateTimeField(default=timezone.now, help_text="Server time, UTC.")
    cutoff = models.DateTimeField(help_text="Records whose retention clock started before this.")
    event = models.ForeignKey(
        AuditEvent,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="The purge's audit event (who ran it, which releases, counts per table).",
    )
    purged = models.JSONField(
        default=dict, help_text='Per table, the purged primary keys as ranges: {"t": [[1, 9]]}.'
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit purge marker"

    def __str__(self) -> str:
        return f"Purge {self.at:%Y-%m-%d %H:%M:%S} (before {self.cutoff:%Y-%m-%d})"
