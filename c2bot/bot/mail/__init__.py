"""The mail gateway: case mail in and out, and commands by email."""
