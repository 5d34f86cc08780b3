"""evengine."""
