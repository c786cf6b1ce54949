"""What one case yields for the criteria: the backend's outputs and pasa-ref's own answers
(specs/certification.md, PASA-CERT-6).

For a case, pasa-ref computes once (`truth`):

    O*      the oracle's output and the largest element of its error bound (PASA-ORC-2)
    Or      the yardstick (PASA-CERT-8): the reference kernel of the declared class in the
            profile, `flash` for the softmax class, `pasa` with the declared beta, blocks and
            ragged mode for the pasa class (None: the profile's); the reference of
            criteria (b) and (c)
    Or_c    the same kernel with its GEMMs summed in the accumulation orders of
            `accumulation_chunks`, and for the softmax class `naive` (P normalised before
            P V) (PASA-CERT-9): the worst of Or and Or_c is the yardstick of criterion (b)
    rows    which query rows see at least one key, and for rows that see exactly one, which
    envelope  whether the case lies in the profile's safe envelope for pasa
            (pasa_ref.envelope.within, PASA-ENV-1)

and the source of outputs (a backend called in-process or isolated, or output files) gives
the first call, the repeated call of criterion (e) when the plan asks for it, and one call
per metamorphic transformation of the case. `Evidence` bundles it all; criteria are pure
functions of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pasa_ref import envelope, oracle
from pasa_ref.cases import DTYPES, Case
from pasa_ref.certify import thresholds
from pasa_ref.certify.backend import Call, Request
from pasa_ref.certify.declaration import SCALE_PLACES, Declaration
from pasa_ref.certify.relations import Transformed
from pasa_ref.inputs import AttentionInputs, blocks, validate
from pasa_ref.kernels import flash, naive, pasa
from pasa_ref.profiles import Profile

__all__ = [
    "Evidence",
    "RelationEvidence",
    "Truth",
    "class_reference",
    "reference_output",
    "request",
    "truth",
    "values",
]

#: the declaration of a backend that declares nothing: pasa with the profile's parameters
DEFAULT_DECLARATION = Declaration()

ROW_BLOCK = 1024  # query rows per visibility tile (bounded memory for 16384 keys)


@dataclass(frozen=True)
class Truth:
    """pasa-ref's answers for one case; arrays are binary64, B x Hq x S1 x Dv unless noted."""

    inputs: AttentionInputs
    oracle: np.ndarray
    oracle_bound: float
    reference: np.ndarray  # Or, the spec's GEMM model (PASA-NUM-3)
    alternatives: tuple[np.ndarray, ...]  # Or_c: other orders and algorithms (PASA-CERT-9)
    visible_rows: np.ndarray  # B x Hq x S1 x 1, False on fully masked rows
    single_key: np.ndarray  # B x Hq x S1: the only visible key of the row, -1 if not one
    within_envelope: bool

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return self.oracle.shape

    @property
    def yardsticks(self) -> tuple[np.ndarray, ...]:
        """Or and every Or_c: the class reference in each modelled accumulation order, and
        the class's other reference algorithms."""
        return (self.reference, *self.alternatives)

    def judged_elements(self) -> np.ndarray:
        """B x Hq x S1 x Dv: True on the rows that see a key; fully masked rows are judged by
        PASA-CERT-15 alone."""
        return np.broadcast_to(self.visible_rows, self.output_shape)

    def reference_nonfinite(self) -> np.ndarray:
        """B x Hq x S1 x Dv: True where some yardstick is NaN or infinite (there a
        non-finite backend element is not a failure, PASA-CERT-11)."""
        bad = np.zeros(self.output_shape, dtype=bool)
        for yardstick in self.yardsticks:
            bad |= ~np.isfinite(yardstick)
        return bad


@dataclass(frozen=True)
class RelationEvidence:
    """A metamorphic transformation, the backend's call on it and the reference kernel's
    output on it (binary64)."""

    transformed: Transformed
    call: Call
    reference: np.ndarray


@dataclass(frozen=True)
class Evidence:
    case: Case
    profile: Profile
    truth: Truth
    first: Call
    second: Call | None
    relations: tuple[RelationEvidence, ...]
    declaration: Declaration = DEFAULT_DECLARATION


def validated(case: Case) -> AttentionInputs:
    """The case through pasa_ref.inputs.validate: the one definition of masks and GQA."""
    return validate(case.q, case.k, case.v, scale=case.scale, causal=case.causal, mask=case.mask)


def request(case: Case, inputs: AttentionInputs | None = None) -> Request:
    """The backend call of a case: scale always as the binary64 number (PASA-IO-3)."""
    inputs = validated(case) if inputs is None else inputs
    return Request(case.q, case.k, case.v, inputs.scale, case.causal, case.mask)


Kernel = Callable[..., np.ndarray]


def class_reference(declaration: Declaration) -> tuple[Kernel, dict[str, Any]]:
    """The reference kernel of the declared class and its declared parameters (PASA-CERT-8):
    `flash` for the softmax class, `pasa` with beta, block_k, block_q and the ragged mode for
    the pasa class (None leaves the profile's default)."""
    algorithm = declaration.algorithm
    if algorithm.kind == "softmax":
        return flash.attention, {}
    return pasa.attention, {
        "beta": algorithm.beta,
        "block_k": algorithm.block_k,
        "block_q": algorithm.block_q,
        "ragged": algorithm.ragged,
        "scale_at": None if algorithm.scale is None else SCALE_PLACES[algorithm.scale],
    }


def class_variants(declaration: Declaration) -> tuple[tuple[Kernel, dict[str, Any]], ...]:
    """The class's other reference algorithms (PASA-CERT-9): for the softmax class `naive`,
    which normalises P before the P V GEMM (flash divides after it); none for pasa."""
    return ((naive.attention, {}),) if declaration.algorithm.kind == "softmax" else ()


def _output(
    kernel: Kernel, options: dict[str, Any], case: Case, profile: Profile, chunk: int | None
) -> np.ndarray:
    with np.errstate(all="ignore"):  # IEEE overflow is expected on adversarial inputs
        out = kernel(
            case.q,
            case.k,
            case.v,
            profile=profile,
            accumulation_chunk=chunk,
            **options,
            **case.call_kwargs(),
        )
    return out.astype(np.float64)


def reference_output(
    case: Case,
    profile: Profile,
    declaration: Declaration = DEFAULT_DECLARATION,
    accumulation_chunk: int | None = None,
) -> np.ndarray:
    """Or: the declared class's reference kernel in the profile, in binary64; with
    accumulation_chunk, its GEMMs summed in that order (PASA-CERT-9)."""
    kernel, options = class_reference(declaration)
    return _output(kernel, options, case, profile, accumulation_chunk)


def alternative_outputs(
    case: Case, profile: Profile, declaration: Declaration, accumulation_chunks: Sequence[int]
) -> tuple[np.ndarray, ...]:
    """Or_c (PASA-CERT-9): the class reference with its GEMMs summed in each of the orders
    `accumulation_chunks`, then the class's other reference algorithms in the spec's model."""
    reordered = tuple(
        reference_output(case, profile, declaration, chunk) for chunk in accumulation_chunks
    )
    variants = tuple(
        _output(kernel, options, case, profile, None)
        for kernel, options in class_variants(declaration)
    )
    return reordered + variants


def truth(
    case: Case,
    profile: Profile,
    declaration: Declaration = DEFAULT_DECLARATION,
    accumulation_chunks: Sequence[int] | None = None,
) -> Truth:
    """pasa-ref's answers for the case; accumulation_chunks defaults to specs/conformance.toml
    [certification.yardstick]."""
    if accumulation_chunks is None:
        accumulation_chunks = thresholds.load().accumulation_chunks
    inputs = validated(case)
    result = oracle.attention(case.q, case.k, case.v, **case.call_kwargs())
    return Truth(
        inputs=inputs,
        oracle=result.output,
        oracle_bound=result.max_bound,
        reference=reference_output(case, profile, declaration),
        alternatives=alternative_outputs(case, profile, declaration, accumulation_chunks),
        visible_rows=inputs.ungroup(inputs.has_visible_key()),
        single_key=_single_key(inputs),
        within_envelope=envelope.within(case, profile),
    )


def _single_key(inputs: AttentionInputs) -> np.ndarray:
    """B x Hq x S1: index of the only visible key of each row, -1 where a row sees 0 or >= 2."""
    b, hkv, g, s1, _ = inputs.q.shape
    out = np.empty((b, hkv, g, s1), dtype=np.int64)
    every_key = slice(0, inputs.seq_k)
    for rows in blocks(s1, ROW_BLOCK):
        tile = inputs.visible(rows, every_key)
        shape = (b, hkv, g, rows.stop - rows.start, inputs.seq_k)
        tile = np.broadcast_to(np.ones((1, 1), bool) if tile is None else tile, shape)
        out[..., rows] = np.where(tile.sum(axis=-1) == 1, tile.argmax(axis=-1), -1)
    return out.reshape(b, hkv * g, s1)


def values(call: Call | None, truth: Truth) -> np.ndarray | None:
    """The call's output in binary64 when it has the expected shape and a floating dtype of
    the case-file format (float16, bfloat16, float32, float64); else None. Criteria other
    than (f) judge only such outputs."""
    if call is None or call.output is None:
        return None
    out = call.output
    if out.shape != truth.output_shape or out.dtype not in DTYPES.values():
        return None
    return out.astype(np.float64)
