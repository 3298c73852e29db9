"""Benchmark: render 1,000 distinct signed labels to one PDF per layout.

Prints one row per layout: labels placed, wall and CPU seconds (signing excluded,
QR building and PDF writing included; CPU time is the fairer figure on a busy machine), labels per second, PDF size and the peak
Python memory traced while rendering (measured in a second, untimed run). The target is 1,000 labels in 5 s or less.

Usage: .venv/bin/python bench/labels_bench.py [--labels N] [--copies N]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from labels.layouts import LAYOUTS  # noqa: E402
from labels.payload import LabelPayload, fingerprint_of, sign_label  # noqa: E402
from labels.qr import qr_matrix  # noqa: E402
from labels.render import LabelContent, render_labels  # noqa: E402


def make_contents(count: int) -> list[LabelContent]:
    """Build `count` distinct, realistic signed labels."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    fingerprint = fingerprint_of(key)
    base = datetime(2026, 3, 1, 7, 5, tzinfo=UTC)
    contents = []
    for number in range(count):
        case_no = f"KWS-2026-{number // 50:04d}"
        item_id = f"{case_no}/{number % 50 + 1}.{number % 3 + 1}"
        seal = f"{400000 + number:06d}"
        seized = base + timedelta(minutes=number)
        payload = LabelPayload(
            item_id=item_id,
            case_no=case_no,
            seal=seal,
            seized_at=seized,
            record_hash=hashlib.sha256(item_id.encode()).digest(),
            key_fingerprint=fingerprint,
            reprint=int(number % 7 == 0),
        )
        contents.append(
            LabelContent(
                agency="Kenya Wildlife Service",
                case_no=case_no,
                item_id=item_id,
                bag=f"Bag {number % 5 + 1} of 5",
                description=(
                    "Pangolin scales in a blue woven polypropylene sack, tied with green "
                    f"nylon rope; sack {number} torn at one corner"
                ),
                species="Smutsia temminckii (Temminck's ground pangolin)",
                quantity=f"{1000 + number} scales, {3 + number % 10 / 10:.1f} kg",
                seal=seal,
                seized_at_utc=seized.strftime("%Y-%m-%d %H:%M UTC"),
                seized_at_local=(seized + timedelta(hours=3)).strftime("%H:%M EAT"),
                officer="Cpl. Wanjiru Kamau, badge 4471",
                place="JKIA cargo shed 3, -1.3192, 36.9278",
                other_ids=f"CITES permit KE-2026-{number:05d}",
                reprint=int(number % 7 == 0),
                qr_text=sign_label(payload, key),
            )
        )
    return contents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    contents = make_contents(args.labels)
    header = (
        f"{'layout':<13} {'labels':>7} {'seconds':>8} {'cpu s':>6} {'labels/s':>9} {'PDF KiB':>8}"
    )
    print(header + f" {'peak MiB':>9}")
    print("-" * (len(header) + 10))
    with tempfile.TemporaryDirectory() as folder:
        for name in LAYOUTS:
            out = Path(folder) / f"{name}.pdf"
            qr_matrix.cache_clear()
            started, cpu_started = time.perf_counter(), time.process_time()
            report = render_labels(contents, layout=name, out=out, copies=args.copies)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            # Tracing slows Python down, so memory is measured in a second, untimed run.
            qr_matrix.cache_clear()
            tracemalloc.start()
            render_labels(contents, layout=name, out=out, copies=args.copies)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"{name:<13} {report.labels:>7} {seconds:>8.2f} {cpu:>6.2f} "
                f"{report.labels / seconds:>9.0f} "
                f"{out.stat().st_size / 1024:>8.0f} {peak / 2**20:>9.1f}"
            )


if __name__ == "__main__":
    main()
