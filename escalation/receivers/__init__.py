"""Receivers: reach on-call away from the screen (email, Slack, Teams, PagerDuty, Web Push,
the signed webhook).

A page becomes one `Job` per receiver target, written to a durable outbox before the
level is claimed (`outbox.py`), so a process killed between the page and the delivery
still delivers once; a `DeliveryWorker` sends the jobs in the background with retries and
capped backoff per receiver, never delaying the socket delivery or another receiver.
`page.py` renders the text (string.Template, overridable per policy), `senders.py` speaks
each receiver's protocol, `push.py` keeps the browsers' Web Push subscriptions.
"""
