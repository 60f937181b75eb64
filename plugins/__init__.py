"""Plugins shipped with footsort: xmp, notify, webhook, export.

Each module is a plugin: it exposes `register(api)` and, for its `[plugins.<name>]` table, a frozen
`Settings` dataclass. Enable one by name in the config (`[plugins] enabled = ["xmp"]`); see docs/plugins.md.
"""
