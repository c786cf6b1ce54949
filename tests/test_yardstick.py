"""The yardstick of the declared class (specs/certification.md PASA-CERT-8, -9), non-finite
outputs and fully masked rows (PASA-CERT-11, -15), and level 3's class hunt.

Each rule is run both ways: a correct kernel written independently of pasa-ref's kernels
(tests/fp32_attention.py) passes, the same kernel with one realistic mistake fails.
Whole-level runs (the bundled naive and flash declared softmax at levels 1 and 2, the
authors' PASA declared and not) take minutes: `benchmarks/certify_bench.py --classes`.
"""

from __future__ import annotations

import numpy as np
import pytest

from pasa_ref import envelope, profiles
from pasa_ref.arithmetic import Arithmetic
from pasa_ref.cases import Case
from pasa_ref.certify import criteria, declaration, evidence, generators, levels, thresholds
from pasa_ref.certify.backend import Backend, Call, Caller, Identity
from pasa_ref.certify.envelope_report import envelope_report
from pasa_ref.hunt import HuntConfig, HuntError, KernelUnderTest, hunt
from pasa_ref.kernels import flash, pasa
from tests.fp32_attention import attention32, shared_bias_case

SOFTMAX = declaration.from_mapping({"algorithm": {"class": "softmax"}})
AUTHORS = declaration.from_mapping(
    {"algorithm": {"class": "pasa", "beta": 0.984497, "ragged": "authors"}}
)


def judge(fn, case: Case, profile: str, declared=evidence.DEFAULT_DECLARATION, chunks=None):
    """{clause: Finding} for one call of fn on the case, as the runner judges it."""
    prof = profiles.get(profile)
    truth = evidence.truth(case, prof, declared, chunks)
    request = evidence.request(case, truth.inputs)
    out = np.asarray(
        fn(
            request.q,
            request.k,
            request.v,
            scale=request.scale,
            causal=request.causal,
            mask=request.mask,
        )
    )
    ev = evidence.Evidence(case, prof, truth, Call(out, None, "", 0.0), None, (), declared)
    return {f.clause: f for f in criteria.evaluate(ev, thresholds.load())}


def case_of(q, k, v, **kwargs) -> Case:
    return Case(q, k, v, label="test", metadata={"id": "test", "group": "test"}, **kwargs)


def kernel32(**options):
    def call(q, k, v, *, scale, causal, mask):
        return attention32(q, k, v, scale=scale, causal=causal, mask=mask, **options)

    return call


# -- accumulation order (PASA-CERT-9) ------------------------------------------------------


def test_chunked_accumulation_is_the_running_sum():
    """Arithmetic's accumulation_chunk: c = 1 is the sequential binary32 sum, rounded after
    every product; c >= K is the once-rounded model."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 40)) * 300).astype(np.float16).astype(np.float64)
    b = (rng.standard_normal((40, 5)) * 300).astype(np.float16).astype(np.float64)
    fmt = profiles.get("fp16-mixed").matmul_accumulate
    sequential = np.zeros((3, 5), dtype=np.float32)
    for t in range(40):
        sequential = (sequential.astype(np.float64) + np.outer(a[:, t], b[t])).astype(np.float32)
    prof = profiles.get("fp16-mixed")
    got = Arithmetic(prof, 1).matmul(a, b, prof.input, prof.input)
    assert np.array_equal(got, sequential)
    whole = Arithmetic(prof, 64).matmul(a, b, prof.input, prof.input)
    assert np.array_equal(whole, Arithmetic(prof).matmul(a, b, prof.input, prof.input))
    assert fmt.precision == 24
    with pytest.raises(ValueError, match="argument 'accumulation_chunk'"):
        Arithmetic(prof, 0)


@pytest.mark.parametrize(("seed", "gap"), [(1, 95.0), (0, 120.0)])
@pytest.mark.parametrize("chunk", [1, 16])
def test_hardware_summation_order_passes_where_the_model_alone_fails(seed, gap, chunk):
    """Scores near 3.5e8: an fp32 kernel summing its score GEMM sequentially (or in k = 16
    steps) fails PASA-CERT-12 against the once-rounded model alone and passes against the
    worst modelled order."""
    q, k, v = shared_bias_case(seed, gap)
    case = case_of(q, k, v)
    assert float(q[0, 0, 0].astype(np.float64) @ k[0, 0, 0].astype(np.float64)) > 3e8
    fn = kernel32(chunk=chunk)
    before = judge(fn, case, "fp16-mixed", SOFTMAX, chunks=())["PASA-CERT-12"]
    after = judge(fn, case, "fp16-mixed", SOFTMAX)
    assert before.severity > 1
    assert all(f.passed for f in after.values()), after


@pytest.mark.parametrize("profile", ["fp16-mixed", "bf16-mixed"])
def test_the_independent_fp32_kernel_passes_the_benign_and_grid_cases(profile):
    prof = profiles.get(profile)
    for case in generators.benign(prof)[:3] + generators.paper_grid(prof)[::8]:
        found = judge(kernel32(chunk=16), case, profile, SOFTMAX)
        assert all(f.passed for f in found.values()), (case.label, found)


@pytest.mark.parametrize(
    "mistake", [{"score_sum": np.float16}, {"scale_error": 1.01}], ids=["fp16-sum", "scale"]
)
def test_a_real_bug_still_fails(mistake):
    """fp16 accumulation of the scores, or a scale 1% off, fails a clause on the benign cases
    and the paper's grid in fp16-mixed, even with the worst order allowed."""
    prof = profiles.get("fp16-mixed")
    cases = generators.benign(prof)[:3] + generators.paper_grid(prof)[::8]
    failed = [
        case.label
        for case in cases
        if not all(
            f.passed for f in judge(kernel32(**mistake), case, "fp16-mixed", SOFTMAX).values()
        )
    ]
    assert failed


# -- the class yardstick (PASA-CERT-8) -----------------------------------------------------


@pytest.mark.parametrize(
    ("label", "clause"),
    [("edge-block-means-jump", "PASA-CERT-15"), ("grid-uniform-mean20-amp5", "PASA-CERT-12")],
)
def test_softmax_class_compares_flash_with_flash(label, clause):
    """In fp16-full PASA's shift beats a kernel that forms raw fp16 scores: the bundled flash
    fails against the pasa yardstick and passes as a softmax kernel."""
    prof = profiles.get("fp16-full")
    case = next(c for c in generators.edge(prof) + generators.paper_grid(prof) if c.label == label)

    def flash_kernel(q, k, v, *, scale, causal, mask):
        return flash.attention(q, k, v, profile=prof, scale=scale, causal=causal, mask=mask)

    as_pasa = judge(flash_kernel, case, "fp16-full")
    as_softmax = judge(flash_kernel, case, "fp16-full", SOFTMAX)
    assert not as_pasa[clause].passed
    assert all(f.passed for f in as_softmax.values())


@pytest.mark.parametrize(
    ("profile", "label", "clause"),
    [
        ("fp16-full", "edge-resonance", "PASA-CERT-15"),
        ("fp16-mixed", "edge-authors-shape", "PASA-CERT-15"),
        ("fp16-mixed", "grid-uniform-mean20-amp5", "PASA-CERT-12"),
    ],
)
def test_authors_pasa_is_judged_by_its_declared_parameters(profile, label, clause):
    """The reference PASA run as the authors' code runs it (beta 0.984497, their padding)
    fails against the profile's PASA (a gamma of 63.5 amplifies block-mean errors) and
    passes when it declares those parameters."""
    prof = profiles.get(profile)
    case = next(c for c in generators.edge(prof) + generators.paper_grid(prof) if c.label == label)

    def authors(q, k, v, *, scale, causal, mask):
        return pasa.attention(
            q, k, v, profile=prof, scale=scale, causal=causal, mask=mask,
            beta=0.984497, ragged="authors",
        )  # fmt: skip

    assert not judge(authors, case, profile)[clause].passed
    declared = judge(authors, case, profile, AUTHORS)
    assert all(f.passed for f in declared.values()), declared


@pytest.mark.parametrize("profile", ["fp16-full", "bf16-mixed"])
def test_absolute_bounds_follow_the_declared_beta(profile):
    """PASA-CERT-13 on the worst benign case (sd 3): the authors' PASA (gamma 63.5) fails the
    bounds calibrated at the profile's beta and passes them scaled by rho = (1 + gamma) /
    (1 + gamma_P) when it declares its beta; the same declared kernel reading the value rows
    one key late (a realistic indexing bug) still fails."""
    prof = profiles.get(profile)
    case = next(c for c in generators.benign(prof) if c.label == "benign-sd3")

    def authors(q, k, v, *, scale, causal, mask):
        return pasa.attention(
            q, k, v, profile=prof, scale=scale, causal=causal, mask=mask,
            beta=0.984497, ragged="authors",
        )  # fmt: skip

    def authors_late_values(q, k, v, *, scale, causal, mask):
        return authors(q, k, np.roll(v, 1, axis=2), scale=scale, causal=causal, mask=mask)

    assert not judge(authors, case, profile)["PASA-CERT-13"].passed
    declared = judge(authors, case, profile, AUTHORS)["PASA-CERT-13"]
    assert declared.passed and declared.measures["recovery_amplification"] > 3.9
    assert not judge(authors_late_values, case, profile, AUTHORS)["PASA-CERT-13"].passed


# -- non-finite outputs and fully masked rows (PASA-CERT-11, -15) --------------------------


def overflow_case(profile: str) -> Case:
    """The paper's uniform input at mean_val 30, Am 0.5, D = 128 in fp16: raw q . k near
    115200 overflows fp16 where the raw scores are formed (naive and flash in fp16-full)."""
    prof = profiles.get(profile)
    return next(c for c in generators.paper_grid(prof) if c.label == "grid-uniform-mean30-amp0p5")


def test_nonfinite_is_a_failure_outside_the_envelope_too():
    """All-NaN fails (a) wherever the class reference is finite, inside the envelope or not;
    flash in fp16-full overflows like its own reference there and is excused; a flash that
    returns 0 in place of NaN is judged by its zeros and fails (b)."""
    case = overflow_case("fp16-full")
    prof = profiles.get("fp16-full")

    def flash_kernel(q, k, v, *, scale, causal, mask):
        return flash.attention(q, k, v, profile=prof, scale=scale, causal=causal, mask=mask)

    def zero_for_nan(q, k, v, *, scale, causal, mask):
        out = flash_kernel(q, k, v, scale=scale, causal=causal, mask=mask)
        return np.where(np.isfinite(out), out, 0).astype(out.dtype)

    def all_nan(q, k, v, *, scale, causal, mask):
        return np.full((*q.shape[:-1], v.shape[-1]), np.nan, dtype=q.dtype)

    request = evidence.request(case)
    raw = flash_kernel(case.q, case.k, case.v, scale=request.scale, causal=False, mask=None)
    assert not np.isfinite(raw).all()
    excused = judge(flash_kernel, case, "fp16-full", SOFTMAX)
    assert all(f.passed for f in excused.values()), excused
    zeros = judge(zero_for_nan, case, "fp16-full", SOFTMAX)
    assert not zeros["PASA-CERT-12"].passed
    nan = judge(all_nan, case, "fp16-full")  # the pasa yardstick is finite here
    assert not nan["PASA-CERT-11"].passed


def masked_rows_case() -> Case:
    prof = profiles.get("fp16-mixed")
    return next(c for c in generators.edge(prof) if c.label == "edge-masked-rows")


@pytest.mark.parametrize("convention", ["zero", "nan", "unspecified"])
def test_fully_masked_rows_are_judged_once(convention):
    """A kernel giving NaN on fully masked rows fails PASA-CERT-15 alone when it declares
    "zero" (the spec), and no clause when it declares "nan" or "unspecified"."""
    prof = profiles.get("fp16-mixed")
    case = masked_rows_case()
    declared = declaration.from_mapping({"conventions": {"fully_masked_rows": convention}})
    truth = evidence.truth(case, prof, declared, ())
    assert not truth.visible_rows.all()

    def nan_rows(q, k, v, *, scale, causal, mask):
        out = pasa.attention(q, k, v, profile=prof, scale=scale, causal=causal, mask=mask)
        return np.where(truth.visible_rows, out, np.nan).astype(out.dtype)

    found = judge(nan_rows, case, "fp16-mixed", declared)
    failing = sorted(clause for clause, f in found.items() if not f.passed)
    assert failing == (["PASA-CERT-15"] if convention == "zero" else [])


# -- level 3: the class hunt ---------------------------------------------------------------


def under_test(fn) -> KernelUnderTest:
    """A function as the hunts call a backend: through a Caller (deadline, protocol)."""
    backend = Backend(fn, Identity(name="test", receives_profile=True))
    return KernelUnderTest("test", Caller(backend, "fp16-mixed", timeout=60.0, isolate=False),
                           "flash")


def test_class_hunt_finds_a_wrong_scale_and_not_the_reference():
    """The objective "class" against the softmax yardstick: flash itself never fails it (its
    ratio is err / (err + ulp) < 1), a flash with the scale 2% off fails within seconds."""
    yardstick = levels._yardstick(SOFTMAX)

    def wrong_scale(q, k, v, *, scale, causal, mask, profile):
        return flash.attention(
            q, k, v, profile=profile, scale=scale * 1.02, causal=causal, mask=mask
        )

    def base(fn, budget):
        return HuntConfig(
            kernel="test",
            profile="fp16-mixed",
            objective="class",
            budget=budget,
            seed=0,
            threshold=2.0,
            yardstick=yardstick,
            max_seq=64,
            max_dim=32,
        )

    bad = hunt(base(wrong_scale, 20.0), kernel=under_test(wrong_scale))
    assert bad.findings and bad.findings[0].evaluation.failed
    good = hunt(base(flash.attention, 3.0), kernel=under_test(flash.attention))
    assert not good.findings and good.best is not None and good.best.evaluation.value <= 1


def test_envelope_report_is_a_check_of_its_own(tmp_path):
    """The search behind `pasa certify --envelope-report`: flash in fp16-full overflows inside
    pasa's safe envelope (it is not PASA); the case is written and reported as such."""
    prof = profiles.get("fp16-full")
    with Caller("pasa_ref.kernels.flash:attention", prof.name, timeout=60.0,
                isolate=False) as caller:
        found = envelope_report(caller, prof, 0, 15.0, tmp_path, thresholds.load())
    assert found.cases and all(path.is_file() for path in found.cases)
    case = Case.load(found.cases[0])
    assert envelope.within(case, prof)
    out = flash.attention(case.q, case.k, case.v, profile=prof, **case.call_kwargs())
    assert not np.isfinite(out).all()
    assert "not a failure for a softmax-class kernel" in found.text()


def test_class_hunt_needs_a_yardstick():
    config = HuntConfig(kernel="flash", profile="fp16-mixed", objective="class", budget=1.0)
    with pytest.raises(HuntError, match="'class' needs a yardstick"):
        config.checked()
