"""Planted-bug backends: small realistic mistakes in a PASA implementation, each a subclass of
the correct step-by-step implementation in `base` that overrides one step. `pasa certify`
must reject every one at level 2 or lower (tests/test_certify.py, benchmarks/certify_bench.py).

CATALOGUE maps each module to the profile it is certified in; the backend is
`tests.mutants.<module>:attention`.
"""

CATALOGUE: dict[str, str] = {
    "wrong_recovery_factor": "fp16-full",
    "missing_frame_conversion": "fp16-full",
    "padding_in_block_mean": "fp16-full",
    "gqa_head_mapping": "fp16-full",
    "running_max_not_raised": "fp16-full",
    "fp16_accumulation": "fp16-mixed",
    "scores_before_scaling": "fp16-full",
    "mask_before_mean": "fp16-full",
    "off_by_one_running_average": "fp16-full",
    "ragged_block_dropped": "fp16-full",
    "causal_top_left": "fp16-full",
    "nan_on_masked_rows": "fp16-full",
    "nondeterministic_blocks": "fp16-full",
    "output_not_rounded": "fp16-full",
    "finite_mask_65504_guarded": "fp16-full",
    "finite_mask_65504": "fp16-full",
    "finite_mask_10000_guarded": "fp16-full",
    "finite_mask_30000_guarded": "fp16-mixed",
    "batch_reads_first_keys": "fp16-full",
    "batch_stride_uses_query_heads": "fp16-full",
    "head_stride_uses_query_length": "fp16-full",
}


def backend(module: str) -> str:
    return f"tests.mutants.{module}:attention"
