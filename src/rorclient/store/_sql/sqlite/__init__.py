"""The SQLite half of the SQL stores: schema and migrations, rows, bulk load."""
