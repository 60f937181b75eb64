"""The systemd unit and launchd agent templates (installed as footsort.service_templates)."""
