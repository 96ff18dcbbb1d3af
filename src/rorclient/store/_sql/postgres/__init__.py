"""The PostgreSQL half of the SQL stores: URL parsing, connections, schema and migrations, rows, bulk
load. Importing this package does not import psycopg (only ``connect`` and what uses it do)."""
