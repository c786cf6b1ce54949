"""The scoreboard: real attention kernels certified against the PASA spec, each within the
declaration its adapter discovers (pasa_ref.adapters), written as docs/kernels.md and
docs/kernels.csv.

    python benchmarks/scoreboard.py --out docs --jobs 16

On a machine with an NVIDIA GPU the kernels are torch SDPA's four backends on CUDA
(torch:math, torch:flash, torch:efficient, torch:cudnn) and JAX's attention on the CPU
(jax:xla); without one, torch:math and jax:xla on the CPU (--kernels NAME@DEVICE ... picks
others). Each kernel is certified in every --profiles (fp16-mixed, bf16-mixed) at every
--levels (1, 2, 3), one `python -m pasa_ref certify` process per certificate, --jobs at a
time, longest first (level 3's hunts are CPU-bound, 120 s each by default; numpy and BLAS
are held to one thread per process). Every failing clause's smallest failing case (in
input elements, among those the certificate lists and a deterministic plan holds; else its
worst case) is then recomputed in float64 (benchmarks/float64_check.py) and the table
says whether it is a defect of the kernel or a limit of the suite; the failing cases (when small) are copied to
OUT/kernels-cases/ and the reproduction commands point there. Profiles a kernel's
declaration leaves out are not run (the row says why). Certificates stay under --work.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GPU_KERNELS = ("torch:math@cuda", "torch:flash@cuda", "torch:efficient@cuda",
               "torch:cudnn@cuda", "jax:xla@cpu")
CPU_KERNELS = ("torch:math@cpu", "jax:xla@cpu")
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "PYTHONUNBUFFERED": "1"}
MAX_PUBLISHED_BYTES = 512 * 1024  # failing cases copied next to the doc, when this small
COLUMNS = ("kernel", "version", "device", "declared scope", "profile", "level",
           "applicable cases", "not applicable", "verdict", "failing clauses",
           "kernel s", "total s")


@dataclass
class Run:
    kernel: str
    device: str
    profile: str
    level: int
    out: Path
    wall_s: float = 0.0
    returncode: int | None = None
    log: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kernel.replace(':', '-')}-{self.device}-{self.profile}-l{self.level}"


def _environment() -> dict[str, str]:
    env = {**os.environ, **ONE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _has_cuda() -> bool:
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def certify(run: Run, isolate: bool, timeout: float) -> Run:
    command = [sys.executable, "-m", "pasa_ref", "certify", run.kernel, "--device", run.device,
               "--profile", run.profile, "--level", str(run.level), "--out", str(run.out), "-q"]
    if isolate:
        command.append("--isolate")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=_environment(),
                              timeout=timeout, cwd=ROOT)
        run.returncode, run.log = done.returncode, (done.stdout + done.stderr)[-4000:]
    except subprocess.TimeoutExpired:
        run.returncode, run.log = None, f"stopped after {timeout:g} s"
    run.wall_s = time.perf_counter() - start
    return run


_PLANNING = threading.Lock()  # one `pasa gen` per plan


@functools.cache
def _planned_cases(profile: str, level: int, seed: int, declared: str, work: Path) -> dict[str, Path]:
    """The case files of a deterministic plan (levels 1 and 2) by id, written by `pasa gen`
    under the declaration the certificate records (`declared`, as JSON: the plan is drawn
    inside its scope, PASA-CERT-7)."""
    digest = hashlib.sha256(declared.encode()).hexdigest()[:12]
    out = work / f"plan-{profile}-l{level}-s{seed}-{digest}"
    declaration_file = work / f"declaration-{digest}.json"
    with _PLANNING:
        declaration_file.write_text(declared, encoding="utf-8")
        subprocess.run([sys.executable, "-m", "pasa_ref", "gen", "--profile", profile,
                        "--level", str(level), "--seed", str(seed), "--declare",
                        str(declaration_file), "-o", str(out)],
                       capture_output=True, env=_environment(), cwd=ROOT)
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return {}
    entries = json.loads(manifest.read_text())
    listed = entries.get("cases", entries.get("files", []))
    return {e["id"]: out / f"{e['id']}.npz" for e in listed if not e.get("derived_from")}


def _same_case(a: Path, b: Path) -> bool:
    from pasa_ref.cases import Case

    x, y = Case.load(a), Case.load(b)
    return all(
        p.shape == q.shape and p.tobytes() == q.tobytes() for p, q in
        ((x.q, y.q), (x.k, y.k), (x.v, y.v))
    ) and x.causal == y.causal


def smallest_failure(run: Run, clause: dict[str, Any], doc: dict[str, Any]) -> tuple[str, Path]:
    """The smallest listed failing case of the clause (fewest input elements), as a case
    file of the plan; the saved worst case when the plan holds none of the listed ones
    (level 3's long and hunted cases) or does not reproduce the certified worst case (a
    plan is drawn by hypothesis, whose draws can depend on the modules a process imports)."""
    from pasa_ref.cases import Case

    worst = clause["worst"]
    fallback = worst["case"], Path(worst["file"])
    declared = json.dumps(doc.get("declaration") or {}, sort_keys=True)
    files = _planned_cases(run.profile, min(run.level, 2), int(doc.get("seed", 0)), declared,
                           run.out.parent)
    if worst["case"] not in files or not _same_case(files[worst["case"]], Path(worst["file"])):
        return fallback  # the plan drawn here cannot be shown to be the certified one
    failing = [f["case"] for f in clause.get("failures", []) if f["case"] in files]
    if not failing:
        return fallback

    def size(case_id: str) -> int:
        case = Case.load(files[case_id])
        return case.q.size + case.k.size + case.v.size

    case_id = min(failing, key=size)
    return case_id, files[case_id]


def check_failures(run: Run, doc: dict[str, Any]) -> Run:
    """The float64 check of every failing clause's smallest failing case."""
    for clause in doc.get("clauses", []):
        worst = clause.get("worst") or {}
        if clause.get("verdict") != "FAIL" or not worst.get("file"):
            continue
        case_id, path = smallest_failure(run, clause, doc)
        command = [sys.executable, str(ROOT / "benchmarks" / "float64_check.py"), run.kernel,
                   str(path), "--device", run.device, "--profile", run.profile]
        done = subprocess.run(command, capture_output=True, text=True, env=_environment(),
                              cwd=ROOT)
        try:
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            first = next((line for line in lines if "Check failed" in line or "Fatal" in line),
                         lines[-1] if lines else "")
            if done.returncode < 0:  # a signal: the kernel's call ended the process
                result = {"finding": "kernel defect",
                          "what": f"the kernel's call ends the process (signal "
                                  f"{-done.returncode}): {first.strip()[:300]}"}
            else:
                result = {"finding": "check failed", "what": first.strip()[-300:]}
        run.checks.append({**result, "file": str(path), "clause": clause["id"],
                           "case": case_id, "failed": clause.get("failed"),
                           "reproduce": reproduction(run, path)})
    return run


def reproduction(run: Run, path: Path) -> str:
    return (f"pasa certify {run.kernel} --device {run.device} --profile {run.profile} "
            f"--case {path}")


def _document(run: Run) -> dict[str, Any]:
    path = run.out / "certificate.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _not_applicable(doc: dict[str, Any]) -> int | None:
    """The count of not-applicable cases, wherever the certificate keeps it."""
    value = doc.get("cases", {}).get("not_applicable")
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else None


def _kernel_seconds(doc: dict[str, Any]) -> float | None:
    """The kernel's own seconds, wherever the certificate keeps them."""
    for path in (("calls", "kernel_seconds"), ("calls", "seconds"), ("timing", "kernel_s")):
        value: Any = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            return float(value)
    return None


DECLARE = """\
import json, sys
from pasa_ref import adapters
fn = adapters.load(sys.argv[1], device=sys.argv[2])
d = fn.pasa_declaration
try:
    from pasa_ref.certify import declaration
    scope = declaration.from_mapping(d).scope_text()
except ImportError:
    scope = json.dumps(d["supports"], sort_keys=True)
print(json.dumps({"declaration": d, "scope": scope, "version": getattr(fn, "pasa_version", ""),
                  "rejections": list(fn.pasa_capabilities.rejections)}))
"""


def declare(kernel: str, device: str) -> dict[str, Any]:
    """The kernel's declaration, scope in words, version and probe rejections, from a
    process of its own (the adapter probes the kernel there)."""
    done = subprocess.run([sys.executable, "-c", DECLARE, kernel, device], capture_output=True,
                          text=True, env=_environment(), cwd=ROOT)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                f"exit status {done.returncode}"}


def undeclared(run: Run, declared: dict[str, Any]) -> str | None:
    """Why the kernel is not certified in this profile at all: it cannot be loaded, or its
    declaration leaves the profile out (with the probe's rejection)."""
    if "error" in declared:
        return f"cannot load: {declared['error'][:240]}"
    profiles = declared["declaration"].get("supports", {}).get("profiles")
    if profiles is None or run.profile in profiles:
        return None
    why = [r for r in declared.get("rejections", []) if r.startswith(run.profile + ":")]
    return "profile not declared" + (f" ({why[0][len(run.profile) + 2:]})" if why else "")


def publish_cases(run: Run, cases: Path) -> None:
    """Copy each checked failing case (when small) next to the doc and point its
    reproduction command there."""
    for c in run.checks:
        source = Path(c.get("file") or "")
        if not source.is_file() or source.stat().st_size > MAX_PUBLISHED_BYTES:
            continue
        cases.mkdir(parents=True, exist_ok=True)
        target = cases / f"{run.label}-{c['clause']}.npz"
        shutil.copyfile(source, target)
        if source.with_suffix(".json").is_file():
            shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
        shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
        c["reproduce"] = reproduction(run, shown)


def row(run: Run, doc: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    done = doc.get("cases", {}).get("done")
    na = _not_applicable(doc)
    skipped = undeclared(run, declared)
    if skipped is not None:
        verdict = f"NOT RUN: {skipped}"
    elif run.returncode is None or not doc:
        verdict = f"NO RESULT ({run.log.splitlines()[-1] if run.log else 'no output'})"
    elif doc.get("status") != "finished":
        verdict = f"NOT CERTIFIED ({doc.get('status')})"
    else:
        verdict = "CERTIFIED" if doc.get("certified") else "NOT CERTIFIED"
    failing = "; ".join(
        f"{c['clause']} ({c.get('failed')} cases; smallest {c.get('case')}): {c.get('finding')}"
        for c in run.checks
    )
    kernel_s = _kernel_seconds(doc)
    return {
        "kernel": run.kernel,
        "version": declared.get("version") or doc.get("backend", {}).get("version", ""),
        "device": run.device,
        "declared scope": declared.get("scope") or declared.get("error", "")[:240],
        "profile": run.profile,
        "level": run.level,
        "applicable cases": "" if done is None else done - (na or 0),
        "not applicable": "" if na is None else na,
        "verdict": verdict,
        "failing clauses": failing,
        "kernel s": "" if kernel_s is None else f"{kernel_s:.1f}",
        "total s": f"{run.wall_s:.1f}",
    }


def seconds_per_level(rows: list[dict[str, Any]]) -> str:
    """Per level over the certificates that ran: the largest whole-process seconds and the
    largest kernel seconds (kernel alone, when the certificates report it)."""
    lines = ["\n## Seconds per level\n\n", "| level | certificates | largest total s | "
             "largest kernel s |\n", "|---|---|---|---|\n"]
    for level in sorted({r["level"] for r in rows}):
        ran = [r for r in rows if r["level"] == level and not r["verdict"].startswith("NOT RUN")]
        kernel = [float(r["kernel s"]) for r in ran if r["kernel s"] != ""]
        total = max((float(r["total s"]) for r in ran), default=0.0)
        lines.append(f"| {level} | {len(ran)} | {total:.1f} | "
                     f"{f'{max(kernel):.1f}' if kernel else ''} |\n")
    return "".join(lines)


def markdown(rows: list[dict[str, Any]], runs: list[Run], header: str) -> str:
    text = io.StringIO()
    text.write("# Kernels certified against the PASA spec\n\n" + header + "\n\n")
    text.write("| " + " | ".join(c for c in COLUMNS if c != "declared scope") + " |\n")
    text.write("|" + "---|" * (len(COLUMNS) - 1) + "\n")
    for r in rows:
        text.write("| " + " | ".join(str(r[c]) for c in COLUMNS if c != "declared scope")
                   + " |\n")
    text.write(seconds_per_level(rows))
    text.write("\n## Declared scopes (discovered by the adapters)\n\n")
    for kernel, scope in dict.fromkeys((r["kernel"] + " on " + r["device"], r["declared scope"])
                                       for r in rows):
        text.write(f"- **{kernel}**: {scope}\n")
    text.write("\n## Failures, recomputed in float64\n\n")
    checked = [(run, c) for run in runs for c in run.checks]
    if not checked:
        text.write("None.\n")
    for run, c in checked:
        text.write(f"- **{run.kernel} on {run.device}, {run.profile}, level {run.level}, "
                   f"{c['clause']}** (case {c.get('case')}, {c.get('shape', '')}): "
                   f"{c.get('finding')}: {c.get('what')}. Reproduce: `{c.get('reproduce')}`\n")
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--work", type=Path, default=Path("scoreboard-certificates"))
    parser.add_argument("--kernels", nargs="+", default=None, metavar="NAME@DEVICE")
    parser.add_argument("--profiles", nargs="+", default=["fp16-mixed", "bf16-mixed"])
    parser.add_argument("--levels", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=540.0,
                        help="seconds one certification may take")
    parser.add_argument("--isolate", action="store_true",
                        help="certify with --isolate (a fresh child after a crash)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    names = args.kernels or list(GPU_KERNELS if _has_cuda() else CPU_KERNELS)
    kernels = [tuple(n.rsplit("@", 1)) if "@" in n else (n, "cpu") for n in names]
    work = Path(args.work).resolve()
    runs = [Run(k, d, p, level, work / f"{k.replace(':', '-')}-{d}-{p}-l{level}")
            for k, d in kernels for p in args.profiles for level in args.levels]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        declared = dict(zip([f"{k}@{d}" for k, d in kernels],
                            pool.map(lambda kd: declare(*kd), kernels), strict=True))
        planned = [r for r in runs if undeclared(r, declared[f"{r.kernel}@{r.device}"]) is None]
        list(pool.map(lambda r: certify(r, args.isolate, args.timeout),
                      sorted(planned, key=lambda r: -r.level)))
        docs = {r.label: _document(r) for r in runs}
        list(pool.map(lambda r: check_failures(r, docs[r.label]), planned))
    ordered = sorted(runs, key=lambda r: (r.kernel, r.device, r.profile, r.level))
    for r in ordered:
        publish_cases(r, args.out / "kernels-cases")
    rows = [row(r, docs[r.label], declared[f"{r.kernel}@{r.device}"]) for r in ordered]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "kernels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    header = (f"Regenerated by `python benchmarks/scoreboard.py --out {args.out} --jobs "
              f"{args.jobs}` in {time.perf_counter() - started:.0f} s on {os.cpu_count()} "
              "cores; seconds per certificate: the kernel's own (when the certificate reports "
              "them) and the whole process (framework start, probing and the suite's work).")
    (args.out / "kernels.md").write_text(markdown(rows, ordered, header), encoding="utf-8")
    print(f"wrote {args.out / 'kernels.md'} and {args.out / 'kernels.csv'} "
          f"({len(rows)} certificates, {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
