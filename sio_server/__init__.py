"""The Socket.IO + HTTP face of the daemon: auth, rooms, client events, API, dashboard."""
