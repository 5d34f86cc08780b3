"""What the engine shows about itself: on the console, to `evengine ctl status`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from evproto.states import CpState, Health

__all__ = ["EngineStatus"]


@dataclass(frozen=True, slots=True)
class EngineStatus:
    cp_id: str
    state: CpState
    health: Health
    price: float | None
    power_kw: float  # delivered now: 0 unless supplying
    session_id: str | None = None
    driver_id: str | None = None
    kwh: float = 0.0
    eur: float = 0.0
    elapsed_s: float = 0.0
    manual: str = ""  # a manual supply waiting for the central, in words
    location: str = ""
    central_reachable: bool | None = None  # None until the monitor says
    monitor_connected: bool = False
    broker_up: bool = False

    @property
    def state_text(self) -> str:
        if self.health is Health.KO:
            return f"{self.state.value} · KO (simulated fault)"
        return f"{self.state.value} ({self.state.label})"

    @property
    def central_text(self) -> str:
        if self.central_reachable is None:
            return "unknown (no word from the monitor)"
        return "reachable" if self.central_reachable else "UNREACHABLE"

    def lines(self) -> list[str]:
        """The status as ``name: value`` lines, for people and for grep."""
        price = "not set" if self.price is None else f"{self.price:.2f} €/kWh"
        out = [
            f"cp:       {self.cp_id}" + (f" ({self.location})" if self.location else ""),
            f"state:    {self.state_text}",
            f"health:   {self.health.value}",
            f"price:    {price}",
        ]
        if self.session_id is not None:
            out += [
                f"session:  {self.session_id}",
                f"driver:   {self.driver_id}",
                f"energy:   {self.kwh:.3f} kWh",
                f"cost:     {self.eur:.2f} €",
                f"elapsed:  {self.elapsed_s:.0f} s at {self.power_kw:g} kW",
            ]
        else:
            out.append("session:  none")
        if self.manual:
            out.append(f"manual:   {self.manual}")
        out += [
            f"central:  {self.central_text}",
            f"monitor:  {'connected' if self.monitor_connected else 'not connected'}",
            f"broker:   {'up' if self.broker_up else 'down'}",
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["state"] = self.state.value
        out["health"] = self.health.value
        return out
