"""One router per resource: sessions (and what is done to a session's memory as a whole:
memorize, ask), entries (CRUD, export, import), the reward endpoints, health."""
