"""The assistant's runtime: domain, endpoints, channels, launcher and terminal chat."""
