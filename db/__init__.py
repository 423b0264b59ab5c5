"""The generation log: SQLAlchemy models, migrations, logging and review queries."""
