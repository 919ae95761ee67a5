"""The Training section: the controller that owns a run's process, and the live dashboard."""
