"""evcentral."""
