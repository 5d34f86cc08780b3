"""evcentral: the EV Charging Network's control centre, one asyncio process.

Modules, one concern each:

- ``settings``: flags, ``EV_…`` variables, YAML (docs/interfaces.md)
- ``db`` / ``records``: SQLite (WAL) with versioned migrations, and what it keeps
- ``registry``: CPs and open sessions in memory, and the derived CP state
- ``credentials`` / ``monitor_server`` / ``monitor_link``: CP authentication, the monitor
  port (TCP) and one authenticated link
- ``authorization``: the decision on a supply request (pure)
- ``supply_requests`` / ``sessions``: requests and stops; start, telemetry, tickets, timeouts
- ``operator_actions``: STOP / RESUME / price
- ``outbox`` / ``kafka_io``: everything published, the consumer loop, the broker probe
- ``journal``: the operator's event log; ``metrics``: Prometheus
- ``http``: REST API, dashboard, Server-Sent Events, OpenAPI
- ``core`` / ``app`` / ``__main__``: wiring, lifecycle, the ``evcentral`` command
"""
