"""Sorting: a photo's way from the inbox to its class folder.

watcher (settled paths) -> pipeline (load, predict, decide, move) -> sorter (crash-safe moves) + journal
(the record of every move); daemon runs it per inbox, reloading swaps in a newly promoted model.
"""
