"""evmonitor: the charging point monitor (EV_CP_M).

Modules, one concern each:

- ``settings``: the flags of docs/interfaces.md
- ``monitor``: the process, both links side by side
- ``engine_link``: identity and health checks of the engine, notices to it
- ``central_link``: login, status reports and the central's pushes
- ``authentication`` / ``credentials``: proving the CP, keeping its secret
- ``health``: the current report and its changes
- ``inbound`` / ``reconnect`` / ``tasks``: link helpers (bad input, back-off, task groups)
- ``metrics``: Prometheus metrics
"""

from evmonitor.monitor import Monitor
from evmonitor.settings import MonitorSettings

__all__ = ["Monitor", "MonitorSettings"]
