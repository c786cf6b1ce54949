"""The Triton programs of the PASA forward pass (spec section 5); the launcher is triton_pasa.

Two launches per call:

    shift_keys     grid (T, B * Hkv): K~_j = M_{n_j}^T K_j for one key block j, one GEMM with
                   M's entries rounded into the operand format (PASA-ALG-1), written rounded
                   into the operand format to a buffer B x Hkv x (T * BLOCK_N) x BLOCK_D whose
                   rows past S2 and columns past D are zero. Each key block is shifted once,
                   not once per query block.
    attention      grid (ceil(S1 / BLOCK_M), B * Hq): one query tile against the key blocks
                   j = 1..T in order, the online softmax in the moving frame (PASA-ALG-2..6).

FULL (constexpr) selects the rounding of the profile:

    FULL = False   "-mixed": GEMM operands in the input format, everything else binary32.
                   The scale is applied to the scores (scale_at = "scores"); exp(x - m_ref)
                   of the block is folded into P before P V, as FlashAttention does
                   (P = exp(S~ + gamma (a_j - abar_j) - m_j) = exp(x - m_j) P~, equal in exact
                   arithmetic), so O accumulates in place in the GEMM.
    FULL = True    "-full": every GEMM result, vector op, statistic and accumulator update is
                   rounded into the input format (fp16 or bf16) at the rounding points of
                   PASA-NUM-5, in the spec's order; the scale is folded into M
                   (scale_at = "shift"); row sums are pairwise (PASA-NUM-4).

Values are carried in binary32; `_fl` rounds a binary32 value into the low format and back
(one round-to-nearest-even conversion each way, exact on the way back).
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _fl(x, LOW: tl.constexpr, ROUND: tl.constexpr, EMU: tl.constexpr):
    """fl_LOW(x) carried in binary32 when ROUND, else x. EMU: round to bfloat16 on the bit
    pattern (add 0x7FFF plus the lowest kept bit, clear the low half: round to nearest even,
    inf on overflow), for Triton's interpreter, whose binary32 -> bfloat16 cast truncates."""
    if ROUND:
        if EMU:
            bits = x.to(tl.uint32, bitcast=True)
            bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000
            return bits.to(tl.float32, bitcast=True)
        return x.to(LOW).to(tl.float32)
    return x


@triton.jit
def _dot(a, b, acc, LOW: tl.constexpr, EMU: tl.constexpr):
    """acc + A B with A, B rounded into LOW and binary32 accumulation. EMU (Triton's
    interpreter with bfloat16, whose dot multiplies bfloat16 bit patterns): the same product
    from binary32 copies of the rounded operands (exact products, "ieee" binary32 GEMM)."""
    if EMU:
        a32 = _fl(a.to(tl.float32), LOW, True, EMU)
        b32 = _fl(b.to(tl.float32), LOW, True, EMU)
        return tl.dot(a32, b32, acc, input_precision="ieee")
    return tl.dot(a.to(LOW), b.to(LOW), acc)


@triton.jit
def _pairwise_rowsum(x, LOW: tl.constexpr, EMU: tl.constexpr, ROWS: tl.constexpr,
                     COLS: tl.constexpr, LOG2_COLS: tl.constexpr):
    """Row sums of a ROWS x COLS tile (COLS a power of two), pairwise as PASA-NUM-4: column t
    becomes fl(x_t + x_{t + COLS/2}) until one column is left, each sum rounded into LOW."""
    for level in tl.static_range(LOG2_COLS):
        x = _fl(tl.sum(tl.reshape(x, (ROWS, 2, COLS >> (level + 1))), axis=1), LOW, True, EMU)
    return tl.reshape(x, (ROWS,))


@triton.jit
def shift_keys(
    K, KT, stride_kb, stride_kh, stride_kn, stride_kd,
    stride_tb, stride_th, stride_tn,
    S2, HKV, diag_full, off_full, diag_last, off_last,
    LOW: tl.constexpr, EMU: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """K~_j = M_{n_j}^T K_j for one key block (PASA-ALG-1); diag_*, off_*: M's diagonal and
    off-diagonal entries, already in the operand format, for full blocks and the last one."""
    j = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // HKV
    h = bh % HKV
    rows = j * BLOCK_N + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, BLOCK_D)
    k = tl.load(
        K + b * stride_kb + h * stride_kh + rows[:, None] * stride_kn + dims[None, :] * stride_kd,
        mask=rows[:, None] < S2,
        other=0.0,
    )
    n_j = tl.minimum(S2 - j * BLOCK_N, BLOCK_N)
    last = (j + 1) * BLOCK_N >= S2
    diag = tl.where(last, diag_last, diag_full)
    off = tl.where(last, off_last, off_full)
    t = tl.arange(0, BLOCK_N)
    inside = (t[:, None] < n_j) & (t[None, :] < n_j)
    m_t = tl.where(t[:, None] == t[None, :], diag, off)
    m_t = tl.where(inside, m_t, 0.0)
    k_tilde = _dot(m_t, k, tl.zeros((BLOCK_N, BLOCK_D), tl.float32), LOW, EMU)
    tl.store(
        KT + b * stride_tb + h * stride_th + rows[:, None] * stride_tn + dims[None, :],
        _fl(k_tilde, LOW, True, EMU).to(LOW),
    )


@triton.jit
def _block(
    q, kt_desc, kt_row, v_desc, v_row, mask_desc, mask_row, consts_ptr, j0, offs_m,
    m, ell, abar, o, seen, S1, S2, T, scale, gamma, inv_full, inv_last,
    LOW: tl.constexpr, EMU: tl.constexpr, FULL: tl.constexpr, MASKED: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOG2_BLOCK_N: tl.constexpr,
):
    """One key block j = j0 + 1 of PASA-ALG-2..5 for a query tile; returns the new state."""
    start_n = j0 * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    kt = kt_desc.load([kt_row + start_n, 0])
    product = _dot(q, tl.trans(kt), tl.zeros((BLOCK_M, BLOCK_N), tl.float32), LOW, EMU)
    inv_n = tl.where(j0 == T - 1, inv_last, inv_full)  # fl(1/n_j), n_j the true length
    c_new = tl.load(consts_ptr + 2 * j0)  # fl(1/j)
    c_old = tl.load(consts_ptr + 2 * j0 + 1)  # fl((j-1)/j)
    if MASKED:
        visible = offs_n[None, :] < S2
        if CAUSAL:
            visible = visible & (offs_n[None, :] <= offs_m[:, None] + (S2 - S1))
        if HAS_MASK:
            visible = visible & (mask_desc.load([mask_row, start_n]) != 0)
            seen = tl.maximum(seen, tl.max(visible.to(tl.int32), 1))
    if FULL:
        s = _fl(product, LOW, True, EMU)  # S~ = fl(Q K~^T), the scale folded into M
        a = _pairwise_rowsum(_fl(s * inv_n, LOW, True, EMU), LOW, EMU, BLOCK_M, BLOCK_N,
                             LOG2_BLOCK_N)
        if MASKED:
            s = tl.where(visible, s, float("-inf"))
        m_local = tl.max(s, 1)
        shifted = s - tl.where(m_local == float("-inf"), 0.0, m_local)[:, None]
        p = _fl(tl.exp(_fl(shifted, LOW, True, EMU)), LOW, True, EMU)
        ell_local = _pairwise_rowsum(p, LOW, EMU, BLOCK_M, BLOCK_N, LOG2_BLOCK_N)
    else:
        # S~ = fl(lambda) (Q K~^T); its row max and mean are taken on the product and scaled
        # once per row (max commutes with a positive scale exactly)
        a = (tl.sum(product, 1) * scale) * inv_n
        if MASKED:
            product = tl.where(visible, product, float("-inf"))
        m_local = tl.max(product, 1) * scale
    abar_new = _fl(_fl(a * c_new, LOW, FULL, EMU) + _fl(abar * c_old, LOW, FULL, EMU),
                   LOW, FULL, EMU)
    x = _fl(m_local + _fl(gamma * _fl(a - abar_new, LOW, FULL, EMU), LOW, FULL, EMU),
            LOW, FULL, EMU)
    x = tl.where(m_local == float("-inf"), float("-inf"), x)
    y = _fl(m + _fl(gamma * _fl(abar - abar_new, LOW, FULL, EMU), LOW, FULL, EMU),
            LOW, FULL, EMU)
    y = tl.where(m == float("-inf"), float("-inf"), y)
    m_new = tl.maximum(x, y)
    m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)
    c_y = _fl(tl.exp(_fl(y - m_ref, LOW, FULL, EMU)), LOW, FULL, EMU)
    v = v_desc.load([v_row + start_n, 0])  # rows past S2: the next head's or zeros; P = 0
    if FULL:
        c_x = _fl(tl.exp(_fl(x - m_ref, LOW, True, EMU)), LOW, True, EMU)
        ell = _fl(_fl(c_y * ell, LOW, True, EMU) + _fl(c_x * ell_local, LOW, True, EMU),
                  LOW, True, EMU)
        pv = _fl(_dot(p, v, tl.zeros(o.shape, tl.float32), LOW, EMU), LOW, True, EMU)
        o = _fl(_fl(c_y[:, None] * o, LOW, True, EMU) + _fl(c_x[:, None] * pv, LOW, True, EMU),
                LOW, True, EMU)
    else:
        # P = exp(S~ + gamma (a - abar_new) - m_ref) = exp(x - m_ref) P~ (exactly equal)
        bias = tl.where(m_local == float("-inf"), 0.0,
                        gamma * (a - abar_new) - m_ref) * LOG2E
        p = tl.exp2(product * (scale * LOG2E) + bias[:, None])
        # l sums the weights the P V GEMM multiplies by (P rounded into its operand format),
        # so O / l is a convex combination of V rows: with ex2.approx the row's largest weight
        # is not exactly 1, and summing the unrounded weights let a row with one visible key
        # t return v_t (1 + 2^-12) (-65504 became -inf), a failure the level-3 hunt found
        p = _fl(p, LOW, True, EMU)
        ell = c_y * ell + tl.sum(p, 1)
        o = _dot(p, v, o * c_y[:, None], LOW, EMU)
    return m_new, ell, abar_new, o, seen


@triton.jit
def attention(
    q_desc, kt_desc, v_desc, mask_desc, Out, Consts,
    stride_ob, stride_oh, stride_om, mask_rows_b, mask_rows_h,
    S1, S2, HQ, GROUP, T, scale, gamma, inv_full, inv_last,
    LOW: tl.constexpr, EMU: tl.constexpr, FULL: tl.constexpr, CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    LOG2_BLOCK_N: tl.constexpr, BLOCK_DV: tl.constexpr,
):
    """O for one query tile of one (batch, query head): PASA-ALG-2..6 over the key blocks
    that hold a visible key, then fully masked rows set to 0 (PASA-MASK-3).

    q_desc: (B Hq S1) x BLOCK_D, kt_desc: (B Hkv T 128) x BLOCK_D, v_desc: (B Hkv S2) x
    BLOCK_DV, mask_desc: rows x S2 (padded) uint8, query row i of (b, h) at row
    b mask_rows_b + h mask_rows_h + i (0 where the mask broadcasts); 2-D tensor descriptors:
    rows of the next head past S1 or S2 are read and then discarded (query rows are
    independent, keys past S2 get P = 0)."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // HQ
    h = bh % HQ
    bhkv = b * (HQ // GROUP) + h // GROUP  # PASA-IO-2
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    q = q_desc.load([bh * S1 + pid_m * BLOCK_M, 0])
    kt_row = bhkv * T * BLOCK_N
    v_row = bhkv * S2
    mask_row = b * mask_rows_b + h * mask_rows_h + pid_m * BLOCK_M

    m = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    ell = tl.zeros((BLOCK_M,), tl.float32)
    abar = tl.zeros((BLOCK_M,), tl.float32)
    o = tl.zeros((BLOCK_M, BLOCK_DV), tl.float32)
    seen = tl.zeros((BLOCK_M,), tl.int32)

    # blocks past the last key visible to the tile's last row change neither O nor l
    # (x = -inf, c_y = 1): causal tiles stop there
    first_row = pid_m * BLOCK_M
    if CAUSAL:
        last_row = tl.minimum(first_row + BLOCK_M, S1) - 1
        n_blocks = tl.minimum(tl.cdiv(tl.maximum(last_row + 1 + S2 - S1, 0), BLOCK_N), T)
        n_plain = tl.minimum(tl.maximum(first_row + 1 + S2 - S1, 0) // BLOCK_N, S2 // BLOCK_N)
    else:
        n_blocks = T
        n_plain = S2 // BLOCK_N
    if HAS_MASK:
        n_plain = 0
    n_plain = tl.minimum(n_plain, n_blocks)

    for j0 in range(0, n_plain):
        m, ell, abar, o, seen = _block(
            q, kt_desc, kt_row, v_desc, v_row, mask_desc, mask_row, Consts, j0, offs_m,
            m, ell, abar, o, seen, S1, S2, T, scale, gamma, inv_full, inv_last,
            LOW, EMU, FULL, False, CAUSAL, HAS_MASK, BLOCK_M, BLOCK_N, LOG2_BLOCK_N,
        )
    for j0 in range(n_plain, n_blocks):
        m, ell, abar, o, seen = _block(
            q, kt_desc, kt_row, v_desc, v_row, mask_desc, mask_row, Consts, j0, offs_m,
            m, ell, abar, o, seen, S1, S2, T, scale, gamma, inv_full, inv_last,
            LOW, EMU, FULL, True, CAUSAL, HAS_MASK, BLOCK_M, BLOCK_N, LOG2_BLOCK_N,
        )
    # PASA-ALG-6: fl_acc(O / l), then the output format; rows without a visible key are 0
    # (PASA-MASK-3: decided by the mask, so a row whose scores all overflowed stays 0/0 = NaN).
    # Without an explicit mask a row sees a key iff causal alignment leaves it one.
    if not HAS_MASK:
        if CAUSAL:
            seen = (offs_m + (S2 - S1) >= 0).to(tl.int32)
        else:
            seen = tl.full((BLOCK_M,), 1, tl.int32)
    ell = tl.where(seen > 0, ell, 1.0)
    out = tl.where(seen[:, None] > 0, _fl(tl.math.div_rn(o, ell[:, None]), LOW, True, EMU), 0.0)
    vdims = tl.arange(0, BLOCK_DV)
    tl.store(
        Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + vdims[None, :],
        out.to(LOW),
        mask=offs_m[:, None] < S1,
    )
