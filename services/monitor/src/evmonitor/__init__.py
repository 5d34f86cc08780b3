"""evmonitor."""
