"""Plugins: the events footsort emits (events) and the host that finds and calls plugins (host).

The plugins shipped with footsort live in the repository's plugins/ folder and install as
footsort.plugins.bundled.
"""
