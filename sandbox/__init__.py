"""Sandbox implementations of the identity API and the portal API (development and tests only).

Product code never imports this package: it only talks to the servers over HTTP.
"""
