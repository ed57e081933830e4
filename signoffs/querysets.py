from __future__ import annotations

from django.db import models

from checklist.querysets import visible_to

from .choices import SignatureMeaning, SignatureState


class ReleaseOwnedQuerySet(models.QuerySet):
    release_field = "release"

    def visible_to(self, user) -> ReleaseOwnedQuerySet:
        return visible_to(self, user, self.release_field)


class AttestationQuerySet(ReleaseOwnedQuerySet):
    release_field = "requirement__release"


class SignatureQuerySet(ReleaseOwnedQuerySet):
    def valid(self) -> SignatureQuerySet:
        return self.filter(state=SignatureState.VALID)

    def approvals(self) -> SignatureQuerySet:
        return self.valid().filter(meaning=SignatureMeaning.APPROVED)
