"""The checking machinery every theorem module shares: steps, proofs and residuals.

A proof is a list of steps. A step claims an identity lhs = rhs and holds when the residual
lhs - rhs reduces to zero by exact symbolic rewriting; nothing is sampled. The reduction is

    scalar      doit; sin and cos rewritten as complex exponentials (so trigonometric
                identities become polynomial ones); expand (exponentials split:
                exp(x + y) -> exp(x) exp(y)); pull factors free of a summation index out of the
                sum (factor_sum); cancel (normal form of a rational function whose generators
                are the symbols, exp(.) and Sum(.) atoms);
    explicit    the scalar reduction entry by entry;
    matrix      a matrix expression (symbolic sizes) is expanded into a sum of coefficient x
    expression  matrix-product terms, using J_n = 1 1^T, 1^T 1 = n, hence J_n^2 = n J_n;
                coefficients of equal products are added and reduced as scalars.

A residual that reduces to zero proves the identity; one that does not is reported, so a wrong
statement fails visibly instead of being silently "simplified" into truth. A few steps are
"facts" instead: a symbolic computation whose result is compared with the claim (the solution
set of an equation, a limit, a sign).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sympy as sp
from sympy.matrices.expressions import MatAdd, MatMul, MatPow, MatrixExpr, Transpose, ZeroMatrix
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter
from sympy.simplify.simplify import factor_sum

__all__ = ["Proof", "Step", "is_zero", "matrix_coefficients", "reduce_residual", "show"]

Term = sp.Expr | MatrixExpr | sp.MatrixBase

_SHOWN_CHARS = 400  # a step's formulas are abbreviated to this many characters in reports


class _Printer(StrPrinter):
    """sympy's str printer with the spec's names: J_n, 1, 1^T, I and X^T."""

    def _print_OneMatrix(self, expr: sp.OneMatrix) -> str:
        rows, cols = expr.shape
        if rows == cols:
            return f"J_{self._print(rows)}"
        return "1" if cols == 1 else "1^T" if rows == 1 else f"1[{rows}x{cols}]"

    def _print_Identity(self, expr: sp.Identity) -> str:
        return "I"

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}^T"


def show(expr: object) -> str:
    """A one-line plain-text rendering, abbreviated in the middle when very long."""
    text = _Printer().doprint(expr) if isinstance(expr, sp.Basic) else str(expr)
    if len(text) <= _SHOWN_CHARS:
        return text
    half = _SHOWN_CHARS // 2
    return f"{text[:half]} ... {text[-half:]}"


def _reduce_scalar(expr: sp.Expr) -> sp.Expr:
    expr = sp.sympify(expr).doit()
    if expr.has(sp.sin, sp.cos):
        expr = expr.rewrite(sp.exp)
    if expr.has(sp.exp, sp.Sum):
        expr = sp.expand(expr, power_exp=True)
    if expr.has(sp.Sum):
        expr = factor_sum(expr)
    return sp.cancel(expr)


def _terms(expr: MatrixExpr) -> list[tuple[sp.Expr, tuple[MatrixExpr, ...]]]:
    """expr as a list of (coefficient, product of matrix atoms), distributing products and
    transposes over sums and writing positive integer powers as products."""
    if isinstance(expr, MatAdd):
        return [term for arg in expr.args for term in _terms(arg)]
    if isinstance(expr, MatMul):
        coefficient, factors = expr.as_coeff_matrices()
        terms = [(coefficient, ())]
        for factor in factors:
            terms = [(c * d, f + g) for c, f in terms for d, g in _terms(factor)]
        return terms
    if isinstance(expr, MatPow) and expr.exp.is_Integer and expr.exp > 0:
        return _terms(MatMul(*[expr.base] * int(expr.exp), evaluate=False))
    if isinstance(expr, Transpose):
        return [(c, tuple(f.T for f in reversed(fs))) for c, fs in _terms(expr.arg)]
    return [(sp.Integer(1), (expr,))]


def matrix_coefficients(expr: MatrixExpr) -> dict[tuple[MatrixExpr, ...], sp.Expr]:
    """expr = sum of coefficient x product: product (a tuple of factors) -> reduced coefficient,
    zero coefficients dropped.

    Each product is evaluated by sympy's matrix-expression rules (I X = X, 1 1^T = J_n,
    1^T 1 = n, J_n J_n = n J_n), which may move a scalar into the coefficient.
    """
    coefficients: dict[tuple[MatrixExpr, ...], sp.Expr] = defaultdict(lambda: sp.Integer(0))
    for coefficient, factors in _terms(expr.doit()):
        product = MatMul(coefficient, *factors).doit()
        if isinstance(product, ZeroMatrix):
            continue
        scalar, matrices = (
            product.as_coeff_matrices()
            if isinstance(product, MatMul)
            else (sp.Integer(1), [product])
        )
        coefficients[tuple(matrices)] += scalar
    reduced = {factors: _reduce_scalar(c) for factors, c in coefficients.items()}
    return {factors: c for factors, c in reduced.items() if c != 0}


def _reduce_matrix_expression(expr: MatrixExpr) -> MatrixExpr:
    """The sum of the non-zero terms of matrix_coefficients(expr), or a zero matrix."""
    terms = matrix_coefficients(expr)
    if not terms:
        return ZeroMatrix(*expr.shape)
    return MatAdd(*(MatMul(coefficient, *factors) for factors, coefficient in terms.items()))


def reduce_residual(lhs: Term, rhs: Term) -> sp.Basic:
    """lhs - rhs reduced as described in the module docstring (zero iff the step holds)."""
    difference = lhs - rhs
    if isinstance(difference, sp.MatrixBase):
        return difference.applyfunc(_reduce_scalar)
    if isinstance(difference, MatrixExpr):
        return _reduce_matrix_expression(difference)
    return _reduce_scalar(difference)


def is_zero(residual: sp.Basic) -> bool:
    """True when a reduced residual is the zero scalar, zero matrix or zero matrix expression."""
    if isinstance(residual, sp.MatrixBase):
        return residual.is_zero_matrix is True
    return isinstance(residual, ZeroMatrix) or residual == 0


@dataclass(frozen=True)
class Step:
    """One checked step: what it says, the claim as text, what sympy gave, the verdict.

    An "identity" step's result is the reduced residual lhs - rhs (0 when it holds); a "fact"
    step's result is what its computation gave (a solution set, a limit, a truth value).
    """

    description: str
    claim: str
    result: str
    holds: bool
    kind: str = "identity"


@dataclass
class Proof:
    """The derivation of one theorem: checked steps, in order, and explanatory notes.

    The theorem holds when there is at least one step and every step holds. A failing step does
    not stop the derivation, so a report shows every place where a wrong statement breaks.
    """

    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.holds for step in self.steps)

    def equal(self, description: str, lhs: Term, rhs: Term, shown: str | None = None) -> bool:
        """Record the step lhs = rhs; it holds when lhs - rhs reduces to zero.

        `shown` replaces the rendering of lhs = rhs where sympy's automatic evaluation at
        construction would hide the claim (e.g. a ratio whose common factor cancels at once).
        """
        residual = reduce_residual(lhs, rhs)
        claim = shown or f"{show(lhs)} = {show(rhs)}"
        self.steps.append(Step(description, claim, show(residual), is_zero(residual)))
        return is_zero(residual)

    def equal_in(
        self,
        description: str,
        frames: Iterable[object],
        sides: Callable[[object], tuple[Term, Term]],
    ) -> bool:
        """Record one step lhs = rhs that must hold in every frame (e.g. symbolic and concrete n).

        `sides(frame)` builds (lhs, rhs) in that frame; the frames' labels are appended to the
        description, the text shown is the first frame's, the residual the first non-zero one.
        """
        frames = list(frames)
        built = [sides(frame) for frame in frames]
        failing = [r for r in (reduce_residual(*pair) for pair in built) if not is_zero(r)]
        labels = "; ".join(str(getattr(frame, "label", frame)) for frame in frames)
        lhs, rhs = built[0]
        residual = failing[0] if failing else sp.Integer(0)
        self.steps.append(
            Step(
                f"{description} [{labels}]",
                f"{show(lhs)} = {show(rhs)}",
                show(residual),
                not failing,
            )
        )
        return not failing

    def fact(self, description: str, claim: str, holds: bool, found: object) -> bool:
        """Record a step whose verdict is a symbolic computation other than a residual (a
        solution set, a series, a limit); `found` is what that computation gave."""
        self.steps.append(Step(description, claim, show(found), holds, kind="fact"))
        return holds

    def note(self, text: str) -> None:
        self.notes.append(text)
