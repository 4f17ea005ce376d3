"""Running the product: the CLI, operator commands, and setting up the database it serves."""
