"""finetune-gui: fine-tune an open language model on your own data by clicking through a wizard."""

__version__ = "0.1.0"
