"""The training recipe (recipe.py) and the components it plugs together: Trainer callbacks, stop/pause
control, event sinks, several processes, memory readings and out-of-memory advice."""
