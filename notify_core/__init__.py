"""Shapes shared by the pipeline, the Socket.IO server and escalation.

Settings, event models, ids, room routing, history stores and metrics live here so
that `pipeline`, `sio_server` and `escalation` can all import them without
importing each other.
"""
