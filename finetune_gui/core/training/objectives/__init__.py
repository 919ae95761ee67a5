"""The training pieces of each objective (``core/objectives.py`` names them). Supervised tuning is the
recipe's own path: ``callbacks.PadCollator`` and the chunked loss of ``loss.py``. The preference
objectives (DPO, ORPO) have their collator, loss, reference scores and metrics in ``preference.py`` and
their "Did it learn?" in ``preference_check.py``."""
