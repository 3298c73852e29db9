"""The custody exception hierarchy.

The core raises these and never prints or exits; the CLI maps them to
`error: ...` on stderr and exit 1 in one place. Every message is one complete
sentence naming the object and, where possible, the fix.
"""

from __future__ import annotations


class CustodyError(Exception):
    """Root of every expected custody failure."""


class NotFound(CustodyError):
    """An agency, actor, case, item, event or file does not exist."""

    @classmethod
    def item(cls, item_id: str) -> NotFound:
        return cls(f"Item {item_id} does not exist; list items with 'custody item list'.")

    @classmethod
    def case(cls, case_no: str) -> NotFound:
        return cls(f"Case {case_no} does not exist; list cases with 'custody case list'.")

    @classmethod
    def actor(cls, handle: str) -> NotFound:
        return cls(f"Actor '{handle}' does not exist; list actors with 'custody actor list'.")


class AlreadyExists(CustodyError):
    """A record with that identifier exists already."""


class InvalidInput(CustodyError):
    """A value given by the user is malformed (time, coordinates, CSV row ...)."""


class IllegalTransition(CustodyError):
    """A custody event is not allowed in the item's current state."""


class PermissionDenied(CustodyError):
    """The acting actor's role does not allow this action."""


class KeyProblem(CustodyError):
    """A private key is missing, unreadable or does not match the store."""


class PassphraseNeeded(KeyProblem):
    """A private key is encrypted and no passphrase was given (the CLI may ask for one)."""


class StoreProblem(CustodyError):
    """The store cannot be opened, migrated or written."""


class SignatureProblem(CustodyError):
    """A PDF signature cannot be made (field taken, signer refused, output unwritable)."""
