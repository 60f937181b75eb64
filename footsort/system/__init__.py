"""The machine around footsort: configuration, file locations, logging, atomic writes, the service, doctor."""
