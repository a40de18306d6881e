"""Escalation of unacknowledged critical incidents (policy, scheduler, delivery).

Imports neither `pipeline` nor `sio_server`: it is handed a publisher by the
composition root.
"""
