"""memalpha: LLM agents that learn, with RL, to build their own long-term memory (Mem-α)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
