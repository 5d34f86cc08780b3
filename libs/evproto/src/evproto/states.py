"""Charging point states, with the colour and label the dashboard shows."""

from __future__ import annotations

import enum

__all__ = ["CpState", "Health"]


class CpState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    SUPPLYING = "SUPPLYING"
    STOPPED = "STOPPED"
    WAITING_FOR_SUPPLY = "WAITING_FOR_SUPPLY"
    BROKEN_DOWN = "BROKEN_DOWN"
    DISCONNECTED = "DISCONNECTED"

    @property
    def colour(self) -> str:
        return _COLOURS[self]

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def available(self) -> bool:
        """True when a driver can be authorized to supply here now."""
        return self is CpState.ACTIVE


_COLOURS = {
    CpState.ACTIVE: "green",
    CpState.SUPPLYING: "green",
    CpState.WAITING_FOR_SUPPLY: "green",
    CpState.STOPPED: "orange",
    CpState.BROKEN_DOWN: "red",
    CpState.DISCONNECTED: "grey",
}

_LABELS = {
    CpState.ACTIVE: "Active",
    CpState.SUPPLYING: "Supplying",
    CpState.WAITING_FOR_SUPPLY: "Waiting for the vehicle",
    CpState.STOPPED: "Out of Order",
    CpState.BROKEN_DOWN: "Broken down",
    CpState.DISCONNECTED: "Disconnected",
}


class Health(enum.StrEnum):
    """What a monitor reports about its engine."""

    OK = "OK"
    KO = "KO"  # the engine answered KO (simulated hardware fault)
    UNREACHABLE = "UNREACHABLE"  # the engine did not answer in time or is down
