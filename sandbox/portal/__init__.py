"""Portal sandbox: procedure catalogue and dossier tracking by code."""

from sandbox.portal.app import create_portal_app

__all__ = ["create_portal_app"]
