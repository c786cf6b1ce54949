"""PASA-CERT-5: the same profile, level, seed and declaration give the same plan, bit for bit,
by every route a user takes: the command line (`pasa gen`), a script calling the API from a
source checkout, the same script against pasa-ref installed from a wheel into a directory
named site-packages, and the pytest plugin (under a hypothesis profile of its own). Each
route runs in its own process and reports the plan's sha256 (levels.plan_hash); they must
agree with each other and with this process. hypothesis's "local constants" (constants it
reads from the source of imported, non-site-packages modules) made these differ before
levels.draw turned them off. No network: the wheel is built with --no-build-isolation.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from pasa_ref import profiles
from pasa_ref.certify import declaration, levels, thresholds

ROOT = Path(__file__).resolve().parents[1]
PROFILE, LEVEL, SEED = "fp16-mixed", 2, 3
#: a small scope keeps the plugin's certification cheap; masks and GQA stay drawn
DECLARATION = """\
schema = "pasa-ref/declaration/1"
[algorithm]
class = "softmax"
[supports]
seq_q = { max = 64 }
seq_k = { max = 256 }
head_dim = { max = 64 }
"""
SCRIPT = f"""\
import sys
import pasa_ref
from pasa_ref import profiles
from pasa_ref.certify import declaration, levels, thresholds

declared = declaration.load(sys.argv[1])
items = levels.plan({LEVEL}, profiles.get({PROFILE!r}), {SEED}, thresholds.load(), (), declared)
print(pasa_ref.__file__)
print(levels.plan_hash(items))
"""
PLUGIN_CONFTEST = """\
from hypothesis import settings

settings.register_profile("user", derandomize=True, max_examples=7)
settings.load_profile("user")
"""


_HASH_SEEDS = itertools.count(1)


def _run(
    command: list[str], cwd: Path, pythonpath: Path | None = None, codes: tuple = (0,)
) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PASA_BACKEND", "PYTHONPATH")}
    env["PYTHONHASHSEED"] = str(next(_HASH_SEEDS))  # no route may depend on set order
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode in codes, " ".join(command) + "\n" + result.stdout + result.stderr
    return result.stdout


def _script_route(script: Path, declared: Path, cwd: Path, pythonpath: Path | None) -> tuple:
    module_file, digest = _run(
        [sys.executable, str(script), str(declared)], cwd, pythonpath
    ).split()[-2:]
    return Path(module_file), digest


def _cli_route(declared: Path, tmp: Path) -> str:
    out = tmp / "cases"
    _run(
        [sys.executable, "-m", "pasa_ref", "gen", "--profile", PROFILE, "--level", str(LEVEL),
         "--seed", str(SEED), "--declare", str(declared), "-o", str(out)],
        tmp,
    )
    return json.loads((out / "manifest.json").read_text())["plan_sha256"]


def _wheel_route(script: Path, declared: Path, tmp: Path) -> tuple:
    source = tmp / "source"
    source.mkdir()
    for name in ("pasa_ref", "specs", "proofs"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
          str(source)], tmp)
    target = tmp / "venv" / "lib" / "site-packages"
    wheel = next((tmp / "dist").glob("pasa_ref-*.whl"))
    _run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(target),
          str(wheel)], tmp)
    module_file, digest = _script_route(script, declared, tmp, target)
    assert target in module_file.parents, f"imported {module_file}, not the wheel in {target}"
    return module_file, digest


def _plugin_route(declared: Path, tmp: Path) -> str:
    (tmp / "conftest.py").write_text(PLUGIN_CONFTEST)
    (tmp / "test_user.py").write_text("def test_users_own():\n    pass\n")
    output = _run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pasa-backend",
         "pasa_ref.kernels.flash:attention", "--pasa-profile", PROFILE, "--pasa-level",
         str(LEVEL), "--pasa-seed", str(SEED), "--pasa-declare", str(declared), "--pasa-out",
         str(tmp / "cert"), str(tmp / "test_user.py")],
        tmp,
        codes=(0, 1),  # the plan is the point here, not the verdict
    )
    assert f"declared scope ({declared}): softmax class" in output
    certificate = json.loads((tmp / "cert" / "certificate.json").read_text())
    assert certificate["declaration"]["supports"]["seq_k"]["max"] == 256
    return certificate["plan"]["sha256"]


def test_the_same_plan_by_every_route(tmp_path):
    declared = tmp_path / "kernel.toml"
    declared.write_text(DECLARATION)
    script = tmp_path / "plan_hash.py"
    script.write_text(SCRIPT)
    routes = {name: tmp_path / name for name in ("cli", "script", "wheel", "plugin")}
    for directory in routes.values():
        directory.mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            "cli": pool.submit(_cli_route, declared, routes["cli"]),
            "script": pool.submit(_script_route, script, declared, ROOT, None),
            "wheel": pool.submit(_wheel_route, script, declared, routes["wheel"]),
            "plugin": pool.submit(_plugin_route, declared, routes["plugin"]),
        }
        hashes = {name: future.result() for name, future in futures.items()}
    source_file, hashes["script"] = hashes["script"]
    assert ROOT in source_file.parents, f"the script imported {source_file}, not the checkout"
    hashes["wheel"] = hashes["wheel"][1]
    items = levels.plan(
        LEVEL, profiles.get(PROFILE), SEED, thresholds.load(), (), declaration.load(declared)
    )
    hashes["this process"] = levels.plan_hash(items)
    assert len(set(hashes.values())) == 1, hashes


def test_plan_hash_sees_one_changed_bit():
    prof, conf = profiles.get("fp16-full"), thresholds.load()
    items = levels.plan(1, prof, 0, conf)
    flipped = items[0].case.q.copy()
    flipped.view("u2").flat[0] ^= 1
    changed = [replace(items[0], case=replace(items[0].case, q=flipped)), *items[1:]]
    assert levels.plan_hash(items) == levels.plan_hash(levels.plan(1, prof, 0, conf))
    assert levels.plan_hash(changed) != levels.plan_hash(items)
