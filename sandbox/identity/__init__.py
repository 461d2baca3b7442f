"""Identity sandbox: e-authentication by one-time code against sample citizens."""

from sandbox.identity.app import create_identity_app

__all__ = ["create_identity_app"]
