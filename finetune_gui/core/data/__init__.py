"""Dataset intake: read any common fine-tuning file, validate it row by row, and encode it for training."""

from finetune_gui.core.data.formats import FORMATS, Example
from finetune_gui.core.data.readers import SUFFIXES
from finetune_gui.core.data.scan import Problem, ScanReport, load_examples, scan_dataset

__all__ = ["FORMATS", "SUFFIXES", "Example", "Problem", "ScanReport", "load_examples", "scan_dataset"]
