"""evbench: the load harness and benchmark of the EV Charging Network.

Simulated charging points and drivers speak the real protocols (framed TCP with
challenge-response authentication, Kafka topics keyed and partitioned by
``evproto``) against the real ``evcentral`` process and the embedded broker.

Modules, one concern each:

- ``stats``: percentiles, summaries, growth per 1,000 CPs
- ``procstat``: CPU and resident memory of a process from ``/proc``
- ``limits``: file-descriptor limit and loopback source addresses
- ``link`` / ``bare``: the lean framed client link and the bare frame server baseline
- ``monitors`` / ``sse``: the monitor fleet (auth, 1 Hz status) and dashboard-state probes
- ``engines`` / ``drivers``: the engine fleet and the driver fleet on Kafka
- ``loadgen``: one load step as its own process (``python -m evbench.loadgen``)
- ``plan`` / ``run`` / ``report``: ``make bench``: the steps, the processes, the report
"""

__version__ = "0.1.0"
