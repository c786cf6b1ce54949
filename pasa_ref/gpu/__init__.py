"""GPU kernels (optional extra `pasa-ref[triton]`: torch and triton).

Nothing here is imported by `import pasa_ref`; import pasa_ref.gpu.triton_pasa explicitly.
"""
