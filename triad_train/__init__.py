"""`triad train`: fine-tune an image-text-to-text model on a built InstructIAD folder.

TRL's ``SFTTrainer`` with PEFT LoRA (or full fine-tuning) on the CoT-M conversations or the
multiple-choice questions, with prompts built by the evaluation's own code
(:mod:`triad_train.examples`, :mod:`triad_train.collator`) and the held-out discipline of
:mod:`triad_train.selection`. Importing this package imports neither trl nor peft (nor torch):
:func:`triad_train.trainer.train` does, when it runs.
"""
