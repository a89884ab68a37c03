"""Socket.IO v5 server: namespaces, rooms, acks, broadcasts."""

