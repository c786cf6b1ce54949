"""pasa-ref: reference kernels, exact oracle, proofs and certification for PASA attention.

Layers, each importing only those before it:
profiles -> kernels -> oracle -> metrics -> strategies -> reproduce -> certify -> cli.
"""

__version__ = "0.1.0"
