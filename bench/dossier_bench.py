"""Benchmark: build a dossier for a large case (default 500 items, 5,000 events,
200 identifications) and verify it offline; prints a table with peak memory.

    .venv/bin/python bench/dossier_bench.py [--items 500] [--events 5000] [--ids 200]

Target: the build takes <= 10 s on the project machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--ids", type=int, default=200)
    args = parser.parse_args()

    from custody.domain import EventType
    from custody.dossier.build import build_dossier, verify_dossier
    from custody.events import (
        Draft,
        Writer,
        load_signer,
        record_receive,
        record_transfer,
        record_unseal,
    )
    from custody.models import ItemCreate
    from custody.records import add_actor, add_items, init_store, open_case
    from custody.species import BUNDLED_LIBRARY, bundled_data, identify_files, reference_store
    from custody.timeutil import now_utc, to_utc_text

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["CUSTODY_HOME"] = str(root / "home")
        store = init_store(
            str(root / "c.db"),
            agency_code="KWS",
            agency_name="Kenya Wildlife Service",
            country="KE",
            home=root / "home",
        )
        for handle, role in (("officer", "officer"), ("lab", "analyst"), ("dpp", "prosecutor")):
            add_actor(
                store,
                handle=handle,
                name=f"Bench {role}",
                role=role,
                badge="B-1",
                agency_code="KWS",
            )
        officer, lab, dpp = (load_signer(store, h) for h in ("officer", "lab", "dpp"))
        open_case(
            store,
            case_no="BIG-1",
            title="Large ivory and scale seizure",
            signer=officer,
            at="2026-01-01T00:00:00Z",
        )
        specs = [
            (ItemCreate(description=f"Tusk fragment {n}, wrapped in sacking", species="Loxodonta africana", weight=1.5, unit="kg", seal=f"S-{n:05d}", place="Port of Mombasa", lat=-4.06, lon=39.66, seized_at="2026-01-01T06:00:00Z"), [])
            for n in range(args.items)
        ]  # fmt: skip
        items = [i.id for i in add_items(store, case_no="BIG-1", specs=specs, signer=officer)]
        reference_store(store).import_version(BUNDLED_LIBRARY, [bundled_data("demo_library.fasta")])
        result = identify_files(
            store, files=[bundled_data("demo_queries.fasta")], library=BUNDLED_LIBRARY
        )[0]
        analysed = items[: min(args.ids, len(items))]
        for n, item in enumerate(analysed):
            # The lab holds and opens what it analyses.
            record_transfer(store, item_id=item, signer=officer, receiver=lab)
            record_receive(store, item_id=item, signer=lab, condition="seal intact")
            record_unseal(store, item_id=item, signer=lab, seal=f"S-{n:05d}", reason="sampling")
        remaining = args.events - args.items - 1 - args.ids - 3 * len(analysed)
        t = to_utc_text(now_utc())
        with store.write() as session:
            w = Writer(session)
            for n in range(max(0, remaining)):
                item = items[n % len(items)]
                note = {"text": f"inspection {n}: seal intact, contents unchanged"}
                draft = Draft.on_item(item, case_no="BIG-1", type=EventType.NOTE, data=note, at=t)
                w.append(draft, signer=officer)
            for n in range(args.ids):
                item = analysed[n % len(analysed)]
                draft = Draft.on_item(
                    item, case_no="BIG-1", type=EventType.ANALYSE, data=result.event_data(), at=t
                )
                w.append(draft, signer=lab)
            w.finish()
        start = time.perf_counter()
        built = build_dossier(store, case_no="BIG-1", out=root / "big.pdf", signer=dpp)
        build_s = time.perf_counter() - start
        size = (root / "big.pdf").stat().st_size
        start = time.perf_counter()
        check = verify_dossier(root / "big.pdf")
        verify_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'what':28} {'value':>12}")
    print(f"{'items / events / ids':28} {args.items:>4} / {args.events} / {args.ids}")
    print(f"{'dossier build (s)':28} {build_s:12.2f}   target <= 10 s")
    print(f"{'pages':28} {built.pages:12d}")
    print(f"{'PDF size (MiB)':28} {size / 2**20:12.2f}")
    print(f"{'offline verify (s)':28} {verify_s:12.2f}   valid={check.valid}")
    print(f"{'peak memory (MiB)':28} {peak:12.0f}")


if __name__ == "__main__":
    main()
