"""One router module per area; each holds no business logic, only calls into the library."""
