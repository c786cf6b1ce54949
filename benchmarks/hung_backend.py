"""Level 1 with a hung backend (issue 12, PASA-CERT-52): how long `pasa certify` takes when
every call of the backend busy-loops forever, with --timeout 1.

    python benchmarks/hung_backend.py [--limit 300] [--timeout 1] [--isolate] [--src DIR]

runs `python -m pasa_ref certify hung_backend:busy --level 1 --timeout T -q` in a subprocess
(pasa-ref from --src, default this checkout; give an export of an older commit to compare),
sends it Ctrl-C after --limit seconds if it is still running, and prints the wall time, the
cases done of those planned, the certificate's status and the calls made. The backend is
`busy` below: a Python-level loop that never returns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def busy(q, k, v, *, scale, causal, mask):
    """Never returns (and holds the GIL between bytecodes, as a hung Python kernel does)."""
    while True:
        pass


def measure(src: Path, limit: float, timeout: float, isolate: bool) -> dict:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pasa_ref", "certify", "hung_backend:busy", "--level",
                   "1", "--timeout", str(timeout), "--out", out, "-q"]
        command += ["--isolate"] if isolate else []
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path(__file__).parent}"}
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            child.wait(limit)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        seconds = time.perf_counter() - start
        doc = json.loads((Path(out) / "certificate.json").read_text())
    return {"seconds": seconds, "exit": child.returncode, "status": doc["status"],
            "done": doc["cases"]["done"], "planned": doc["cases"]["planned"],
            "calls": doc.get("calls")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("--src", type=Path, default=ROOT)
    args = parser.parse_args()
    result = measure(args.src, args.limit, args.timeout, args.isolate)
    calls = result["calls"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; pasa-ref from {args.src}")
    print(f"level 1, fp16-full, every call hangs, --timeout {args.timeout:g}"
          f"{' --isolate' if args.isolate else ''}: {result['seconds']:.1f} s wall, "
          f"{result['done']}/{result['planned']} cases, status {result['status']}, exit "
          f"{result['exit']}"
          + (f", {calls['made']} calls" if calls else ""))


if __name__ == "__main__":
    main()
