"""Triad (ICCV 2025) in transformers: the model class, its processor and the checkpoint converter.

Importing this package registers the ``triad`` model type with transformers' Auto classes,
so a converted checkpoint folder loads with ``AutoModelForImageTextToText`` and
``AutoProcessor`` too.
"""

from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from triad_eval.triad.modeling import TriadConfig, TriadForConditionalGeneration, TriadModel, region_tokens
from triad_eval.triad.processing import TriadProcessor

AutoConfig.register("triad", TriadConfig, exist_ok=True)
AutoModelForImageTextToText.register(TriadConfig, TriadForConditionalGeneration, exist_ok=True)
AutoProcessor.register(TriadConfig, TriadProcessor, exist_ok=True)

__all__ = ["TriadConfig", "TriadForConditionalGeneration", "TriadModel", "TriadProcessor", "region_tokens"]
