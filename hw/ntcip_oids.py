"""The NTCIP 1202 (ASC MIB) objects the adapter and the virtual controller use: OIDs, access and value ranges.

Source: ``../shared/reference/standards.md`` §A (v01/v02 OIDs). Table columns take the row index as suffix (group 1 =
phases 1-8), scalars ``.0``. One controller per agent address: NTCIP addresses a controller by its IP and port.
"""

from __future__ import annotations

#: nema.transportation.devices: the subtree agents expose (ASC plus NTCIP 1201 global objects)
DEVICES = (1, 3, 6, 1, 4, 1, 1206, 4, 2)
#: asc = nema.transportation.devices.asc
ASC = DEVICES + (1,)
PHASE = ASC + (1,)
DETECTOR = ASC + (2,)
UNIT = ASC + (3,)
COORD = ASC + (4,)
PREEMPT = ASC + (6,)

MAX_PHASES = PHASE + (1, 0)
MAX_PHASE_GROUPS = PHASE + (3, 0)
#: phaseStatusGroup columns (row = group)
STATUS_REDS, STATUS_YELLOWS, STATUS_GREENS = PHASE + (4, 1, 2), PHASE + (4, 1, 3), PHASE + (4, 1, 4)
STATUS_DONT_WALKS, STATUS_PED_CLEARS, STATUS_WALKS = PHASE + (4, 1, 5), PHASE + (4, 1, 6), PHASE + (4, 1, 7)
STATUS_VEH_CALLS, STATUS_PED_CALLS = PHASE + (4, 1, 8), PHASE + (4, 1, 9)
STATUS_PHASE_ONS, STATUS_PHASE_NEXTS = PHASE + (4, 1, 10), PHASE + (4, 1, 11)
#: phaseControlGroup columns (read-write)
CONTROL_OMIT, CONTROL_PED_OMIT = PHASE + (5, 1, 2), PHASE + (5, 1, 3)
CONTROL_HOLD, CONTROL_FORCE_OFF = PHASE + (5, 1, 4), PHASE + (5, 1, 5)
CONTROL_VEH_CALL, CONTROL_PED_CALL = PHASE + (5, 1, 6), PHASE + (5, 1, 7)

MAX_VEHICLE_DETECTORS = DETECTOR + (1, 0)
MAX_DETECTOR_GROUPS = DETECTOR + (3, 0)
#: vehicleDetectorStatusGroupActive (row = group of 8 detectors)
DETECTOR_ACTIVE = DETECTOR + (4, 1, 2)
VOLUME_OCCUPANCY_SEQUENCE = DETECTOR + (5, 1, 0)
VOLUME_OCCUPANCY_PERIOD = DETECTOR + (5, 2, 0)
#: detectorVolume / detectorOccupancy (row = detector number)
DETECTOR_VOLUME, DETECTOR_OCCUPANCY = DETECTOR + (5, 4, 1, 1), DETECTOR + (5, 4, 1, 2)

UNIT_STARTUP_FLASH = UNIT + (1, 0)
UNIT_BACKUP_TIME = UNIT + (3, 0)
UNIT_CONTROL_STATUS = UNIT + (5, 0)
UNIT_FLASH_STATUS = UNIT + (6, 0)
UNIT_ALARM_STATUS2, UNIT_ALARM_STATUS1, SHORT_ALARM_STATUS = UNIT + (7, 0), UNIT + (8, 0), UNIT + (9, 0)

COORD_OPERATIONAL_MODE = COORD + (1, 0)
COORD_PATTERN_STATUS = COORD + (10, 0)
SYSTEM_PATTERN_CONTROL = COORD + (14, 0)

MAX_PREEMPTS = PREEMPT + (1, 0)
#: preemptState (row = preempt number): 2 notActive
PREEMPT_STATE = PREEMPT + (2, 1, 16)
#: preemptControlState (row = preempt number, read-write)
PREEMPT_CONTROL_STATE = PREEMPT + (3, 1, 2)

#: NTCIP 1201 globalTime (seconds; a field controller counts UTC since 1970, a virtual one from its start)
GLOBAL_TIME = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 6, 3, 1, 0)

#: the phase control columns a central system writes every cycle (all restart unitBackupTime)
PHASE_CONTROLS = (CONTROL_HOLD, CONTROL_FORCE_OFF, CONTROL_VEH_CALL, CONTROL_PED_CALL, CONTROL_OMIT)

#: occupancy is reported 0..200 in 0.5 % steps (values above 200 are detector fault codes)
OCCUPANCY_FULL = 200
#: coordOperationalMode / systemPatternControl / coordPatternStatus: free and flash
PATTERN_FREE, PATTERN_FLASH = 254, 255


def dotted(oid: tuple[int, ...]) -> str:
    """``1.3.6...`` text of an OID."""
    return ".".join(map(str, oid))
