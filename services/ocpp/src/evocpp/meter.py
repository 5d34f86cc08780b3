"""Reading the energy register (and power) out of OCPP meter values, both versions.

1.6: ``{"value": "1234.5", "measurand": …, "unit": "Wh"}`` (value a string);
2.0.1: ``{"value": 1234.5, "measurand": …, "unitOfMeasure": {"unit": "Wh",
"multiplier": 0}}``. The measurand defaults to the imported energy register,
the unit to Wh; kWh and W/kW are converted. Keys arrive snake_cased (the
``ocpp`` library converts them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Reading", "read_meter_values"]

_ENERGY = "Energy.Active.Import.Register"
_POWER = "Power.Active.Import"
_SCALE = {"Wh": 1.0, "kWh": 1000.0, "W": 1.0, "kW": 1000.0}


@dataclass(frozen=True, slots=True)
class Reading:
    energy_wh: float | None = None
    power_w: float | None = None


def read_meter_values(meter_values: list[dict[str, Any]] | None) -> Reading:
    """The last energy register and power readings in ``meter_values``."""
    energy: float | None = None
    power: float | None = None
    for meter_value in meter_values or []:
        for sample in meter_value.get("sampled_value") or []:
            if sample.get("phase"):
                continue  # per-phase values: the register total is what we bill
            measurand = sample.get("measurand") or _ENERGY
            value = _value_of(sample)
            if value is None:
                continue
            if measurand == _ENERGY:
                energy = value
            elif measurand == _POWER:
                power = value
    return Reading(energy, power)


def _value_of(sample: dict[str, Any]) -> float | None:
    try:
        value = float(sample.get("value", ""))
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    unit_of_measure = sample.get("unit_of_measure") or {}
    unit = sample.get("unit") or unit_of_measure.get("unit") or "Wh"
    multiplier = int(unit_of_measure.get("multiplier", 0) or 0)
    scale = _SCALE.get(unit)
    if scale is None:
        return None
    return value * scale * 10.0 ** max(-9, min(9, multiplier))
