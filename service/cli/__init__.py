"""The command line (``python -m service``): model commands, the admin client, the demo model."""
