"""Method set-up: loading the base each method trains on and attaching its adapter (setup.py), and our
own bottleneck adapters (bottleneck.py), which PEFT lacks."""

# Our bottleneck adapters' config file: what tells their folder apart (read without importing torch).
BOTTLENECK_CONFIG = "bottleneck_config.json"
