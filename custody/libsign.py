"""Signed reference libraries: each version's manifest signed by the actor who imported it.

`species_ref` keeps a version's files and a manifest of their hashes, which
someone with write access to the folder can recompute after relabelling records.
Here custody signs the manifest's exact bytes with the importing actor's key, in
`<references>/.signatures/<library>/v<NNNN>.json` (outside `species_ref`'s
folders: it never imports custody, and custody only reads its files).

Invariants:
- A signature names the library, version, the manifest's SHA-256 and content
  hash, and the signer's handle and key; it is checked against the key the
  store certified (`custody.trust`), never against a key the file carries.
- Identifications cite the signed manifest (`citation`), and `verify` and
  `ref show` recompute the version's files against it (`check_version`): a
  changed file, a rewritten manifest or a missing signature is a sentence.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from custody.canonical import canonical_json
from custody.errors import AlreadyExists, NotFound
from custody.events import Signer
from custody.keys import verify_signature
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

FORMAT = "custody-library-signature-v1"
DOMAIN = b"custody-library-manifest-v1\n"


def signature_path(store: Store, name: str, version: int) -> Path:
    return store.references_dir / ".signatures" / name / f"v{version:04d}.json"


def _manifest_path(store: Store, name: str, version: int) -> Path:
    from custody.species import reference_store
    from species_ref.library import MANIFEST

    return reference_store(store).version_dir(name, version) / MANIFEST


def _manifest_sha(store: Store, name: str, version: int) -> str | None:
    try:
        return (
            "sha256:"
            + hashlib.sha256(_manifest_path(store, name, version).read_bytes()).hexdigest()
        )
    except OSError:
        return None


def sign_version(store: Store, *, name: str, version: int, signer: Signer) -> dict[str, Any]:
    """Sign a library version's manifest as its importer; refuses a version signed already."""
    from custody.files import write_output
    from custody.species import reference_store

    manifest = reference_store(store).manifest(name, version)
    sha = _manifest_sha(store, name, version)
    if sha is None:
        raise NotFound(f"Library '{name}' version {version} has no readable manifest.")
    path = signature_path(store, name, version)
    if path.exists():
        raise AlreadyExists(f"Library '{name}' version {version} is signed already.")
    body = {
        "format": FORMAT,
        "library": name,
        "version": version,
        "manifest_sha256": sha,
        "content_hash": manifest.get("content_hash"),
        "signer": signer.actor.handle,
        "key": signer.key.fingerprint,
        "signed_at": to_utc_text(now_utc()),
    }
    doc = {**body, "sig": signer.key.sign(DOMAIN + canonical_json(body))}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output(path, canonical_json(doc), what="library signature")
    return doc


def read_signature(store: Store, name: str, version: int) -> dict[str, Any] | None:
    from custody.files import parse_json

    try:
        doc = parse_json(signature_path(store, name, version).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def check_version(store: Store, *, name: str, version: int) -> list[str]:
    """Sentences for each way the version departs from its signed manifest; [] when intact."""
    from sqlmodel import select

    from custody.models import Actor
    from custody.species import reference_store
    from custody.trust import certified_keys

    where = f"Library '{name}' version {version}"
    doc = read_signature(store, name, version)
    if doc is None:
        return [f"{where} has no signed manifest; it cannot be tied to the actor who imported it."]
    body = {k: v for k, v in doc.items() if k != "sig"}
    with store.read() as session:
        actor = session.exec(select(Actor).where(Actor.handle == str(doc.get("signer")))).first()
        certified = certified_keys(session)
    problems: list[str] = []
    if (
        actor is None
        or actor.key_fingerprint != doc.get("key")
        or not verify_signature(
            public_hex=actor.public_key,
            signature_b64=str(doc.get("sig")),
            message=DOMAIN + canonical_json(body),
        )
    ):
        problems.append(f"{where}'s manifest signature does not verify with its signer's key.")
    elif (actor.handle, actor.key_fingerprint) not in certified:
        problems.append(
            f"{where} was signed by '{actor.handle}', whose key no trusted agency root certified."
        )
    if _manifest_sha(store, name, version) != doc.get("manifest_sha256"):
        problems.append(
            f"{where}'s manifest was changed after it was signed by '{doc.get('signer')}' "
            f"(its records or hashes were rewritten); re-import the library from its sources."
        )
    try:
        problems.extend(reference_store(store).verify(name, version))
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable version is a sentence
        problems.append(f"{where} cannot be read ({exc.__class__.__name__}).")
    return problems


def citation(store: Store, *, name: str, version: int) -> dict[str, Any] | None:
    """What an identification cites: the signed manifest's hash and its signer."""
    doc = read_signature(store, name, version)
    if doc is None:
        return None
    return {
        "manifest_sha256": doc.get("manifest_sha256"),
        "signed_by": doc.get("signer"),
        "key": doc.get("key"),
    }


def cited_libraries(events: Any) -> set[tuple[str, int]]:
    """(library, version) of every identification among `events` that cites a signed manifest."""
    out: set[tuple[str, int]] = set()
    for ev in events:
        data = ev.data
        if data.get("library_manifest") and data.get("library_name"):
            try:
                out.add((str(data["library_name"]), int(data["library_version_number"])))
            except (TypeError, ValueError):
                continue
    return out
