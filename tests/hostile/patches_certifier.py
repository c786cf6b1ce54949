"""At import, makes every clause pass and every certificate certified; returns zeros. Under
isolation the certifier never imports it, so it cannot (PASA-CERT-50)."""

import numpy as np

from pasa_ref.certify import certificate, criteria

criteria.evaluate = lambda evidence, conf: []
certificate.Certificate.certified = lambda self: True


def attention(q, k, v, *, scale, causal, mask):
    return np.zeros(q.shape[:3] + v.shape[3:], q.dtype)
