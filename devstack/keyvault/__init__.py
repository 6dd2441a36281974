"""The Key Vault stand-in: the secrets REST subset the real SDK uses, over HTTPS, kept in STATE/keyvault."""
