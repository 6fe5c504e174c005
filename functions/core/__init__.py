"""The thin core every function shares: settings, database, errors, HTTP, auth, todo store."""
