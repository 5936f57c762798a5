"""`python -m memalpha.rl.verl memalpha.config_path=... <verl overrides>` (docs/verl.md)."""

from memalpha.rl.verl.launch import main

if __name__ == "__main__":
    main()
