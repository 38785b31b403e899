"""Identity: accounts, credentials, sessions and proxies."""
