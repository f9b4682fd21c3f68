"""Model adapters: one class per kind of model, behind :class:`triad_eval.api.ModelAdapter`.

:mod:`triad_eval.registry` maps each ``--model`` spec to its class; :func:`load_adapter`
makes one.
"""

from __future__ import annotations

from triad_eval.registry import ADAPTERS, load_adapter

__all__ = ["ADAPTERS", "load_adapter"]
