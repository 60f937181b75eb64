"""Learning: data, training, corrections and the checks that decide whether a model is better.

datasets, sources, dedupe, views, synth (what the model sees) -> feature_cache, trainer (how it learns) ->
training (`footsort train`), corrections + retrain (`footsort retrain`) -> evaluation, metrics, report.
"""
