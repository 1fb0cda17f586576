"""Several meters read as one (used as the fallback of a counter that covers several devices)."""

from __future__ import annotations

from greenai.meters.base import DeviceEnergy, MaxPower, Meter, MeterInfo, max_power_of


class MeterGroup:
    def __init__(self, meters: list[Meter]) -> None:
        if not meters:
            raise ValueError("a meter group needs at least one meter")
        self._meters = meters

    def info(self) -> MeterInfo:
        infos = [m.info() for m in self._meters]
        weakest = max((i.provenance for i in infos), key=lambda p: p.rank)
        return MeterInfo(
            name="+".join(i.name for i in infos),
            devices=tuple(d for i in infos for d in i.devices),
            provenance=weakest,
            detail="; ".join(i.detail for i in infos),
        )

    def start(self) -> None:
        for meter in self._meters:
            meter.start()

    def read(self) -> list[DeviceEnergy]:
        return [reading for meter in self._meters for reading in meter.read()]

    def max_power(self) -> MaxPower:
        return {device: peak for meter in self._meters for device, peak in max_power_of(meter).items()}

    def close(self) -> None:
        for meter in self._meters:
            meter.close()
