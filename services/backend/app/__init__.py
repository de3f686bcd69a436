"""The backend service: a tiny PyTorch classifier behind a FastAPI API."""

import warnings

# torch warns on import when NumPy is absent. This service never converts to or
# from NumPy arrays, so NumPy is deliberately not installed (it would add ~40 MB).
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
