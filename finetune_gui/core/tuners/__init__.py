"""Method set-up: loading the base each method trains on and attaching its adapter (setup.py), and our
own bottleneck adapters (bottleneck.py), which PEFT lacks."""
