"""The directory `tracehouse-agent run` puts first on the child's PYTHONPATH: its sitecustomize
module starts the agent in every Python process of the command, before the application imports."""

import os

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
