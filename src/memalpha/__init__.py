"""memalpha: train LLM agents with RL to build their own long-term memory (Mem-α, arXiv 2509.25911)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
