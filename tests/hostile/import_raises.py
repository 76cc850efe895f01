"""Reads a config file at import time that does not exist on the user's machine."""
import numpy as np

HIDDEN = 16


def load_config():
    raise FileNotFoundError("config/gru.yaml")


CONFIG = load_config()
