"""rosenblatt: the command-line front end of the pipeline, on ansible-runner."""

__version__ = "0.1.0"
