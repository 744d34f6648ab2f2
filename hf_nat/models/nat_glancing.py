"""Glancing training (GLAT, Qian et al., 2021), shared by the one-pass families.

A first decoder pass runs without gradient; its errors against the gold target (for CTC: against
the best alignment) set how many gold tokens the second, trained pass gets to see:
``ratio × errors`` positions chosen at random. The ratio falls linearly from
``config.glancing_ratio_start`` to ``config.glancing_ratio_end`` over
``config.glancing_anneal_steps`` training forward passes, counted in a buffer so that
checkpoints carry it.
"""

import torch

from .nat_noise import random_positions, uniform_noise

__all__ = ["GlancingMixin"]


class GlancingMixin:
    """Adds the glancing schedule and the choice of revealed positions to a family model."""

    supports_glancing = True

    def _init_glancing(self) -> None:
        """Register the step counter (only when the config asks for glancing)."""
        if self.config.glancing and not self.supports_glancing:
            raise ValueError(f"{type(self).__name__} does not support glancing training (config.glancing=True)")
        if self.config.glancing:
            self.register_buffer("glancing_updates", torch.zeros((), dtype=torch.long))

    def glancing_ratio(self) -> float:
        """The share of first-pass errors revealed at the current training step."""
        config = self.config
        progress = min(1.0, float(self.glancing_updates) / max(config.glancing_anneal_steps, 1))
        return config.glancing_ratio_start + (config.glancing_ratio_end - config.glancing_ratio_start) * progress

    @torch.no_grad()
    def _glancing_reveal(
        self,
        keep: torch.Tensor,
        errors: torch.Tensor,
        generator: torch.Generator | None,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) bool: ``ratio × errors`` random real positions per row (none where ``allowed`` is False)."""
        count = (errors.float() * self.glancing_ratio()).long()
        if allowed is not None:
            count = count * allowed
        noise = uniform_noise(keep.shape, generator, keep.device)
        self.glancing_updates += 1
        return random_positions(keep, count, noise)
