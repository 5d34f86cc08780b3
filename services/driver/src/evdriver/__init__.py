"""evdriver."""
