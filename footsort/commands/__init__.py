"""CLI subcommands, one module per area; each module exposes COMMANDS (a list of click commands).

Only the module of the command being run is imported (`footsort classify` never loads the sort or UI code).

Options and helpers the modules share (--model, --device, settings, plugin host, classifier) are in options.py.
"""

COMMAND_MODULES: dict[str, tuple[str, ...]] = {  # module -> the commands it defines, imported when one is run
    "model_cmds": ("classify", "evaluate", "train"),
    "sort_cmds": ("watch", "sort", "undo", "log"),
    "system_cmds": ("config", "doctor", "service"),
    "learn_cmds": ("retrain", "review", "corrections", "models"),
    "ui_cmds": ("ui",),  # the review page (footsort/ui/)
    "bulk_cmds": ("bulk", "apply"),  # many photos, one process or Ray
}
