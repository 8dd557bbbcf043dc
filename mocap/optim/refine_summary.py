"""The summary of :func:`mocap.optim.refine.refine_person` (kept apart: refine.py was over 400 lines)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RefineSummary:
    iterations: int
    initial_cost: float
    final_cost: float
    noise_px: float
    observations: int
    rejected: int
    rms_px: float
    cg_iterations: int
    seconds: float
    usable: bool
    message: str

    def __str__(self) -> str:
        return (f"refine: {self.iterations} iterations ({self.cg_iterations} CG), cost {self.initial_cost:.4g} → "
                f"{self.final_cost:.4g}, "
                f"σ={self.noise_px:.2f}px, RMS {self.rms_px:.2f}px, {self.rejected}/{self.observations} "
                f"observations rejected, {self.seconds:.2f}s — {'usable' if self.usable else 'NOT usable'}: "
                f"{self.message}")
