"""Failover RTO against backup size on the local stack: the time from the failover request to the orchestration's
`serving` step, with a verified backup of 10,000 and of 100,000 blobs, in the same run (not a pass/fail test).

    python bench/failover_bench.py            # 10,000 and 100,000 blobs
    python bench/failover_bench.py --quick    # 2,000 and 20,000 blobs
    python bench/failover_bench.py --disk     # Azurite saving its metadata to disk, as the tests run it

Each size: five failovers of the same backup (VFXTDR_BENCH_REPEATS), the world reset between them, the median
counts. The last line is `RESULT rto_ratio=<large/small> small_rto_s=<s> large_rto_s=<s> repeats=<n> azurite=<how>`
(target: ratio <= 1.2).

How the large backups are made: a real backup of the filer's few files runs first (the app's whole runbook:
its catalog entry, record, key and manifest are the app's own). Running a real 100,000-blob backup through the
Avere simulator would take far longer than the failover it measures, so the backup container is then seeded
directly with the blob SDK (many small blobs under a prefix of their own, uploaded in parallel), and the
backup's manifest is rewritten with the app's own manifest code (pages of 5,000 entries from a listing of the
container, each page hashed, the index written last), and its catalog entry given the digest the app's record
code computes (`manifest_digest`). The failover then sees what a recorded backup of that size looks like.

Azurite runs in memory (`--inMemoryPersistence`) unless `--disk`: on disk it saves its whole metadata database
every 5 s, blocking every request meanwhile for a time that grows with the blobs it holds (110,000 and more by the
large measurement): the emulator's cost, not the storage API's, and it lands on whichever request is in flight.

Both sizes run in one pytest session (the stack's fixtures: Azurite, Key Vault stand-in, cluster simulators,
local Durable runner on a virtual clock). RTO is measured on the wall clock (time.perf_counter) around the
request and the wait for `serving`: the virtual clock only moves durable timers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pytest  # noqa: E402

from tests.fixtures.storage import ENV_PERSISTENCE  # noqa: E402

SIZES = {"full": (10_000, 100_000), "quick": (2_000, 20_000)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 blobs")
    parser.add_argument("--disk", action="store_true", help="Azurite persisting to disk (as the tests run it)")
    args = parser.parse_args()
    small, large = SIZES["quick" if args.quick else "full"]
    os.environ["VFXTDR_BENCH_SIZES"] = f"{small},{large}"
    os.environ[ENV_PERSISTENCE] = "disk" if args.disk else "memory"
    print(f"Azurite persistence: {os.environ[ENV_PERSISTENCE]}", flush=True)
    case = str(Path(__file__).resolve().parent / "failover_case.py")
    code = pytest.main(
        [
            "-q",
            "-s",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(REPO),
            "-o",
            "addopts=",
            "-o",
            "timeout=0",
            "-W",
            "ignore::DeprecationWarning",
            case,
        ]
    )
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
