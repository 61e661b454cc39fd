"""The pure signal-timing core: intersection model, timing, phase machine, safety monitor, policies.

Imports only numpy and the standard library, so the same code runs in SUMO, at the curb and in replay.
"""
