"""Benchmark: record and verify N custody events; compare with the raw crypto loop.

Prints a table: events/s for recording (batched transactions, as an import
would) and for full verification (hash + chain + signatures, both cores),
next to a raw single-threaded loop of the same SHA-256 + Ed25519 work (the
limit). Also times `custody --help` against `python -c "import typer"`.

    .venv/bin/python bench/custody_bench.py [--events 100000] [--items 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def record(store, signer, *, items: int, events: int) -> float:  # type: ignore[no-untyped-def]
    from custody.domain import EventType
    from custody.events import Draft, Writer
    from custody.models import ItemCreate
    from custody.records import add_items, open_case
    from custody.timeutil import now_utc, to_utc_text

    open_case(store, case_no="BENCH-1", title="bench", signer=signer)
    specs = [
        (ItemCreate(description=f"bag {n}", species="Manis javanica"), []) for n in range(items)
    ]
    made = add_items(store, case_no="BENCH-1", specs=specs, signer=signer)
    per_item = max(1, (events - items - 1) // items)
    start = time.perf_counter()
    batch = 2000
    pending = [(item.id, k) for k in range(per_item) for item in made]
    for i in range(0, len(pending), batch):
        with store.write() as session:
            writer = Writer(session)
            at = to_utc_text(now_utc())
            for item_id, k in pending[i : i + batch]:
                note = {"text": f"inspection {k}: seal intact, weight unchanged"}
                draft = Draft.on_item(
                    item_id, case_no="BENCH-1", type=EventType.NOTE, data=note, at=at
                )
                writer.append(draft, signer=signer)
            writer.finish()
    return time.perf_counter() - start


def raw_loop(n: int) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    body = (
        b'{"actor":"bench","actor_key":"' + b"a" * 64 + b'","at":"2026-11-22T06:00:00.000000Z",'
        b'"case":"BENCH-1","chain":"BENCH-1/1","data":{"text":"inspection 1: seal intact, weight unchanged"},'
        b'"id":1,"item":"BENCH-1/1","prev":"sha256:' + b"b" * 64 + b'","seq":2,"type":"note","v":1}'
    )
    msg = b"custody-event-v1\nsha256:" + hashlib.sha256(body).hexdigest().encode()
    sig = key.sign(msg)
    start = time.perf_counter()
    for _ in range(n):
        digest = hashlib.sha256(body).hexdigest()
        pub.verify(sig, b"custody-event-v1\nsha256:" + digest.encode())
    return time.perf_counter() - start


def startup(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()

    from custody.events import load_signer
    from custody.records import add_actor, init_store
    from custody.verify import verify

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["CUSTODY_HOME"] = str(home)
        store = init_store(
            str(Path(tmp) / "bench.db"), agency_code="KWS", agency_name="KWS", home=home
        )
        add_actor(store, handle="bench", name="Bench Officer", role="officer", agency_code="KWS")
        signer = load_signer(store, "bench")
        rec_s = record(store, signer, items=args.items, events=args.events)
        with store.read() as session:
            from custody.events import event_count

            total = event_count(session)
        t = time.perf_counter()
        report = verify(store)
        ver_s = time.perf_counter() - t
        assert report.intact, report.findings[:3]
        t1 = time.perf_counter()
        verify(store, workers=1)
        ver1_s = time.perf_counter() - t1
    raw_s = raw_loop(total)
    help_s = startup([sys.executable, "-m", "custody.cli.main", "--help"])
    typer_s = startup([sys.executable, "-c", "import typer"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("record (batched, 1 core)", total, rec_s, ""),
        ("verify, all cores", total, ver_s, f"{(total / ver_s) / (total / raw_s):.2f}x raw"),
        ("verify, 1 core", total, ver1_s, f"{(total / ver1_s) / (total / raw_s):.2f}x raw"),
        ("raw SHA-256 + Ed25519 loop", total, raw_s, "1.00x (limit)"),
    ]
    print(f"{'what':32} {'events':>8} {'seconds':>9} {'events/s':>10}  vs raw loop")
    for name, n, secs, note in rows:
        print(f"{name:32} {n:8d} {secs:9.2f} {n / secs:10.0f}  {note}")
    print(
        f"{'custody --help':32} {'':8} {help_s:9.3f} {'':10}  {help_s / typer_s:.2f}x 'import typer' ({typer_s:.3f}s); target <= 2x"
    )
    print(f"peak memory {peak_mb:.0f} MiB; target: verify >= 0.8x raw loop")


if __name__ == "__main__":
    main()
