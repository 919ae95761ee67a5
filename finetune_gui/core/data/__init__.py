"""Dataset intake: read any common fine-tuning file, validate it row by row, and encode it for training."""
