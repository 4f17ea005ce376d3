"""Licensing rules: license keys, the certificates clients verify offline, tiers and features."""
