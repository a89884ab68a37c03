"""Engine.IO v4 server: sessions, transports, heartbeat, limits."""

