"""Attention inputs captured from real models (optional extra `pasa-ref[capture]`).

bert     a BERT encoder forward pass in numpy (binary64) from safetensors weights, that
         returns every layer's per-head Q, K, V
minilm   `python -m pasa_ref.capture.minilm`: all-MiniLM-L6-v2 on a public-domain text,
         written as case files (the corpus pasa_ref/certify/corpora/minilm/), with
         per-layer score statistics
"""
