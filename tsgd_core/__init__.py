"""tsgd: video dataset distillation with Temporal Saliency-Guided Distillation (TSGD)."""

__version__ = "0.1.0"
