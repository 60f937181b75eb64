"""CLI subcommands, one module per area; each module exposes COMMANDS (a list of click commands)."""

COMMAND_MODULES = (
    "model_cmds",  # classify, evaluate, train
    "sort_cmds",  # watch, sort, undo, log
    "system_cmds",  # config, doctor, service
    "learn_cmds",  # retrain, review, corrections, models
)
