"""Constants shared by the light client and the server."""

DEFAULT_PORT = 8470
