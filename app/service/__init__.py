"""The HTTP API: app factory, controllers, service state, server, auth, schemas."""
