"""The Socket.IO transport (WebSocket and long-polling): connection lifecycle,
recovery, encode-once fan-out, and the engine.io adapters it needs for speed."""
