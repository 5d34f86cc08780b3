"""The central's HTTP side: dashboard, REST API, live events, metrics and probes."""
