"""The Qt window. Never imports torch or other ML libraries at module level (see docs/architecture.md)."""
