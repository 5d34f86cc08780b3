"""evocpp: the OCPP gateway. OCPP-J 1.6 and 2.0.1 stations join the network.

Toward a station it is the central system (CSMS); toward the central each
connector is a charging point: the gateway is its monitor (the authenticated
framed-TCP link, Status reports) and its engine (directives in; SupplyStarted,
Telemetry and Ticket out on Kafka).

Modules: ``websocket`` (the endpoint, admission, the library's connection) ·
``rpc`` (OCPP-J error handling on top of the ``ocpp`` library) · ``v16`` /
``v201`` (the versions' handlers and commands) · ``station_endpoint`` (what the
two versions share) · ``station`` (a station's CPs
and supplies, version-neutral) · ``connector`` (one CP's state) ·
``billing`` (SupplyStarted, Telemetry and the Ticket from the meter) · ``meter``
(energy out of meter values) · ``central_link`` (the monitor role) ·
``kafka_io`` (the engine role) · ``store`` (stations, secrets, transactions) ·
``gateway`` (the process) · ``stations_cli`` · ``settings`` · ``metrics``.
"""
